"""Administration: adding users, teams, reassigning children and the handover that follows."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from fieldapp.accounts import check_password
from fieldapp.models import AuditEvent, Child, Handover, Team, User

from helpers import count, field_error, fresh

NEW_PASSWORD = "violet staple quarry 42"


def user_named(username: str) -> User | None:
    return fresh().scalar(select(User).where(User.username == username))


def new_user(**fields) -> dict:
    data = {"username": "new.worker", "display_name": "Nell Worker", "role": "caseworker",
            "team": "Team A", "phone": "417-555-0199", "password": NEW_PASSWORD}
    data.update(fields)
    return data


@pytest.fixture
def as_admin(client, world, login):
    login(world.admin)
    return world


def test_admin_adds_a_user_who_can_log_in(app, client, as_admin):
    response = client.post("/admin/users", data=new_user(username="  New.Worker "))
    assert response.status_code == 303
    user = user_named("new.worker")
    assert (user.display_name, user.role, user.team.name, user.phone, user.active) == (
        "Nell Worker", "caseworker", "Team A", "417-555-0199", True)
    assert check_password(user, NEW_PASSWORD)
    assert NEW_PASSWORD not in user.password_hash
    event = fresh().scalars(select(AuditEvent).where(AuditEvent.action == "user.create")
                            .order_by(AuditEvent.id.desc())).first()
    assert event.actor_id == as_admin.admin.id and json.loads(event.details)["username"] == "new.worker"
    page = client.get("/admin/users").text
    assert "Added Nell Worker." in page and "Nell Worker" in page

    other = app.test_client()
    login = other.post("/login", data={"username": "new.worker", "password": NEW_PASSWORD})
    assert login.status_code == 302
    assert "My caseload" in other.get("/caseload").text


def test_a_weak_password_is_refused_beside_the_password(client, as_admin):
    before = count(User)
    response = client.post("/admin/users", data=new_user(password="elevenchars"))
    assert response.status_code == 422
    assert "Use at least 12 characters." in field_error(response.text, "password")
    assert field_error(response.text, "username") == ""
    assert count(User) == before and user_named("new.worker") is None


@pytest.mark.parametrize("username", ["cw.a", "CW.A", " cw.a "])
def test_a_taken_username_is_refused(client, as_admin, username):
    before = count(User)
    response = client.post("/admin/users", data=new_user(username=username, role="supervisor"))
    assert response.status_code == 422
    assert "The username 'cw.a' is taken." in field_error(response.text, "username")
    assert count(User) == before
    assert user_named("cw.a").role == "caseworker"


@pytest.mark.parametrize("team", ["", "   ", None])
def test_a_caseworker_needs_a_team(client, as_admin, team):
    data = new_user(team=team)
    if team is None:
        del data["team"]  # a client that does not send the field at all
    teams = count(Team)
    response = client.post("/admin/users", data=data)
    assert response.status_code == 422
    assert "Caseworkers and supervisors belong to a team." in response.text
    assert user_named("new.worker") is None and count(Team) == teams


def test_a_new_team_name_creates_the_team(client, as_admin):
    response = client.post("/admin/users", data=new_user(username="sup.c", role="supervisor",
                                                         team="Team C"))
    assert response.status_code == 303
    assert user_named("sup.c").team.name == "Team C"
    assert count(Team, Team.name == "Team C") == 1


def test_admin_assigns_a_team(client, as_admin):
    cw = as_admin.cw_a2
    response = client.post(f"/admin/users/{cw.id}/team", data={"team": "team b"})
    assert response.status_code == 303
    assert user_named("cw.a2").team.name == "Team B"  # matched without regard to case
    assert "Cw.A2&#39;s team is saved." in client.get("/admin/users").text

    refused = client.post(f"/admin/users/{cw.id}/team", data={"team": ""}, follow_redirects=True)
    assert "Caseworkers and supervisors belong to a team." in refused.text
    assert user_named("cw.a2").team.name == "Team B"
    assert client.post(f"/admin/users/{cw.id}/team", data={}).status_code == 303
    assert user_named("cw.a2").team.name == "Team B"


def test_reassignment_hands_the_child_over(app, client, world, login, clock):
    child = world.child_a
    login(world.admin)
    form = client.get(f"/admin/children/{child.id}/reassign").text
    assert "Now with Cw.A." in form and "Cw.A2 (Team A)" in form

    response = client.post(f"/admin/children/{child.id}/reassign",
                           data={"caseworker": world.cw_a2.id, "note": "Covering during leave"})

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/children/{child.id}")
    assert fresh().get(Child, child.id).caseworker_id == world.cw_a2.id
    handover = fresh().scalars(select(Handover)).one()
    assert (handover.child_id, handover.from_user_id, handover.to_user_id, handover.by_user_id) == (
        child.id, world.cw_a.id, world.cw_a2.id, world.admin.id)
    assert (handover.handed_at, handover.note, handover.acknowledged_at) == (
        clock.now(), "Covering during leave", None)
    assert "is now on Cw.A2&#39;s caseload" in client.get(f"/children/{child.id}").text

    login(world.cw_a)
    assert client.get(f"/children/{child.id}").status_code == 404
    assert "Alice Avery" not in client.get("/caseload").text
    assert client.post(f"/handovers/{handover.id}/acknowledge").status_code == 404

    login(world.cw_a2)
    caseload = client.get("/caseload").text
    assert "Handed over to you" in caseload
    banner = caseload.split("Handed over to you", 1)[1].split("</section>", 1)[0]
    assert "Alice Avery" in banner and "from Cw.A," in banner and "Covering during leave" in banner
    assert client.get(f"/children/{child.id}").status_code == 200

    clock.advance(hours=1)
    acknowledged_at = clock.now()
    acknowledged = client.post(f"/handovers/{handover.id}/acknowledge")
    assert acknowledged.status_code == 303
    assert fresh().get(Handover, handover.id).acknowledged_at == acknowledged_at
    caseload = client.get("/caseload").text
    assert "Handed over to you" not in caseload and "Alice Avery" in caseload
    # Acknowledging twice keeps the first time.
    clock.advance(hours=1)
    client.post(f"/handovers/{handover.id}/acknowledge")
    assert fresh().get(Handover, handover.id).acknowledged_at == acknowledged_at


def test_reassigning_to_the_same_worker_makes_no_second_handover(client, world, login):
    login(world.admin)
    url = f"/admin/children/{world.child_a.id}/reassign"
    assert client.post(url, data={"caseworker": world.cw_a2.id}).status_code == 303
    assert client.post(url, data={"caseworker": world.cw_a2.id}).status_code == 303
    assert count(Handover) == 1
    assert count(AuditEvent, AuditEvent.action == "child.reassign") == 1
    assert fresh().get(Child, world.child_a.id).caseworker_id == world.cw_a2.id
    # Back to the first worker is a new handover.
    assert client.post(url, data={"caseworker": world.cw_a.id}).status_code == 303
    assert count(Handover) == 2


def test_a_handover_moved_on_leaves_no_banner(client, world, login):
    login(world.admin)
    url = f"/admin/children/{world.child_a.id}/reassign"
    client.post(url, data={"caseworker": world.cw_a2.id})
    client.post(url, data={"caseworker": world.cw_b.id})
    login(world.cw_a2)
    caseload = client.get("/caseload").text
    assert "Handed over to you" not in caseload and "Alice Avery" not in caseload
    login(world.cw_b)
    banner = client.get("/caseload").text.split("Handed over to you", 1)[1].split("</section>")[0]
    assert "Alice Avery" in banner and "from Cw.A2," in banner


@pytest.mark.parametrize("who", ["sup_a", "oncall", "auditor", "admin"])
def test_only_a_caseworker_can_take_a_child(client, world, login, who):
    login(world.admin)
    response = client.post(f"/admin/children/{world.child_a.id}/reassign",
                           data={"caseworker": getattr(world, who).id})
    assert response.status_code == 422
    assert "Not a valid choice" in field_error(response.text, "caseworker")
    assert fresh().get(Child, world.child_a.id).caseworker_id == world.cw_a.id
    assert count(Handover) == 0


def test_a_deactivated_caseworker_is_not_offered(client, world, login):
    login(world.admin)
    assert client.post(f"/admin/users/{world.cw_a2.id}/deactivate").status_code == 303
    form = client.get(f"/admin/children/{world.child_a.id}/reassign").text
    assert "Cw.A (Team A)" in form and "Cw.A2 (Team A)" not in form
    response = client.post(f"/admin/children/{world.child_a.id}/reassign",
                           data={"caseworker": world.cw_a2.id})
    assert response.status_code == 422
    assert count(Handover) == 0


ADMIN_PAGES = ["/admin/users", "/admin/roster", "/admin/children/{child}/reassign"]


@pytest.mark.parametrize("who", ["cw_a", "sup_a", "oncall", "auditor"])
def test_non_admins_get_404_on_admin_pages(client, world, login, who):
    login(getattr(world, who))
    for page in ADMIN_PAGES:
        response = client.get(page.format(child=world.child_a.id))
        assert response.status_code == 404, page
        assert "not on your caseload" in response.text


@pytest.mark.parametrize("who, code", [("cw_a", 404), ("sup_a", 404), ("oncall", 404),
                                       ("auditor", 403)])
def test_non_admins_change_nothing(client, world, login, who, code):
    login(getattr(world, who))
    users = count(User)
    assert client.post("/admin/users", data=new_user()).status_code == code
    assert client.post(f"/admin/users/{world.cw_a2.id}/team",
                       data={"team": "Team B"}).status_code == code
    assert client.post(f"/admin/users/{world.cw_a.id}/deactivate").status_code == code
    assert client.post(f"/admin/children/{world.child_a.id}/reassign",
                       data={"caseworker": world.cw_a2.id}).status_code == code
    assert count(User) == users
    assert user_named("cw.a2").team.name == "Team A"
    assert user_named("cw.a").active is True
    assert fresh().get(Child, world.child_a.id).caseworker_id == world.cw_a.id
    assert count(Handover) == 0
