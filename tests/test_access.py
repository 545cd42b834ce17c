"""Who sees and changes which child (DESIGN §9): case teams, 404s, the auditor and break-the-glass."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.audit import fingerprint
from fieldapp.breakglass import GrantRefused, grant_access
from fieldapp.models import AuditEvent, BreakGlassGrant, Child, Episode, StatusChange

from helpers import count, field_error, fresh

SENSITIVE_HEADING = "Sensitive (case team only)"
REASON = "Police called at 02:10 asking for her photo and last placement address"
# A status change that is valid for a child in placement, so any refusal comes from access alone.
VALID_CHANGE = {"status": "unapproved_location_known", "since": "2026-03-02T13:30",
                "location_address": "12 Elm St, Springfield", "location_adult": "Her aunt",
                "location_verified_how": "Home visit"}


@pytest.fixture
def missing_child(world, make_child, make_episode):
    """A child of another team with an open missing episode: what on-call may reach."""
    child = make_child(world.cw_b, "M-1", first_name="Mia", last_name="Moss",
                       medical_notes="Seizure medication at 8 p.m.")
    make_episode(child, world.cw_b)
    return child


def test_caseworker_gets_404_for_another_teams_child_and_writes_nothing(client, world, login):
    login(world.cw_a)
    assert client.get(f"/children/{world.child_b.id}").status_code == 404
    assert client.get(f"/children/{world.child_b.id}/status").status_code == 404

    response = client.post(f"/children/{world.child_b.id}/status", data=VALID_CHANGE)

    assert response.status_code == 404
    assert "Bobby" not in response.text
    assert fresh().get(Child, world.child_b.id).status == "in_placement"
    assert count(StatusChange, StatusChange.child_id == world.child_b.id) == 1
    assert count(AuditEvent, AuditEvent.child_id == world.child_b.id) == 0
    # The same request on the caseworker's own child goes through: the 404 was about access.
    assert client.post(f"/children/{world.child_a.id}/status", data=VALID_CHANGE).status_code == 303
    assert fresh().get(Child, world.child_a.id).status == "unapproved_location_known"


def test_a_missing_child_id_is_the_same_404(client, world, login):
    login(world.cw_a)
    unknown = client.get("/children/999999")
    other_team = client.get(f"/children/{world.child_b.id}")
    assert unknown.status_code == other_team.status_code == 404
    assert unknown.text == other_team.text


def test_caseworker_sees_own_child_with_the_sensitive_section(client, world, login):
    login(world.cw_a)
    page = client.get(f"/children/{world.child_a.id}")
    assert page.status_code == 200
    assert "Alice Avery" in page.text
    assert SENSITIVE_HEADING in page.text
    assert "Insulin twice daily" in page.text
    caseload = client.get("/caseload").text
    assert "Alice Avery" in caseload and "Bobby Brook" not in caseload


def test_supervisor_sees_the_team_but_not_the_other_team(client, world, login, make_child):
    teammates_child = make_child(world.cw_a2, "A-2", first_name="Arlo", last_name="Ames")
    login(world.sup_a)

    caseload = client.get("/caseload").text
    assert "Alice Avery" in caseload and "Arlo Ames" in caseload
    assert "Bobby Brook" not in caseload
    own = client.get(f"/children/{world.child_a.id}")
    assert own.status_code == 200
    assert SENSITIVE_HEADING in own.text and "Insulin twice daily" in own.text
    assert client.get(f"/children/{teammates_child.id}").status_code == 200
    assert client.get(f"/children/{world.child_b.id}").status_code == 404
    assert client.post(f"/children/{world.child_b.id}/status", data=VALID_CHANGE).status_code == 404
    assert fresh().get(Child, world.child_b.id).status == "in_placement"


def test_administrator_sees_every_child_but_not_the_sensitive_section(client, world, login):
    login(world.admin)
    caseload = client.get("/caseload").text
    assert "Alice Avery" in caseload and "Bobby Brook" in caseload
    for child in (world.child_a, world.child_b):
        page = client.get(f"/children/{child.id}")
        assert page.status_code == 200
        assert child.full_name in page.text
        assert SENSITIVE_HEADING not in page.text
    assert "Insulin" not in client.get(f"/children/{world.child_a.id}").text


def test_auditor_reads_counts_only_and_changes_nothing(client, world, login, missing_child):
    login(world.auditor)
    assert client.get(f"/children/{world.child_a.id}").status_code == 404
    assert client.get(f"/children/{world.child_a.id}/status").status_code == 404
    assert client.get("/caseload").status_code == 404

    write = client.post(f"/children/{world.child_a.id}/status", data=VALID_CHANGE)
    assert write.status_code == 403
    assert fresh().get(Child, world.child_a.id).status == "in_placement"
    assert count(StatusChange) == 4  # three first rows and the missing child's, nothing more

    overview = client.get("/overview")
    assert overview.status_code == 200
    assert "3 children in all" in overview.text
    rows = dict(re.findall(r'status-(\w+)">.*?<td class="num">(\d+)</td>', overview.text, re.S))
    assert rows == {"in_placement": "2", "whereabouts_unknown": "1"}
    for identifying in ("Alice", "Avery", "Bobby", "Mia", "Moss", "A-1", "B-1", "M-1", "Insulin"):
        assert identifying not in overview.text


def test_on_call_without_a_grant_gets_404(client, world, login, missing_child):
    login(world.oncall)
    assert client.get(f"/children/{missing_child.id}").status_code == 404
    assert client.get(f"/children/{missing_child.id}/status").status_code == 404
    caseload = client.get("/caseload")
    assert "0 children" in caseload.text and "Mia Moss" not in caseload.text
    # The on-call list offers the missing child, de-identified, and not the children in placement.
    on_call = client.get("/on-call").text
    assert "Mia M." in on_call and "Mia Moss" not in on_call
    assert "Alice" not in on_call and "Bobby" not in on_call


def test_on_call_cannot_break_the_glass_for_a_child_in_placement(client, world, login):
    login(world.oncall)
    assert client.get(f"/children/{world.child_a.id}/break-glass").status_code == 404
    refused = client.post(f"/children/{world.child_a.id}/break-glass", data={"reason": REASON})
    assert refused.status_code == 404
    assert count(BreakGlassGrant) == 0
    assert client.get(f"/children/{world.child_a.id}").status_code == 404


def test_only_on_call_breaks_the_glass(client, world, login, missing_child):
    login(world.cw_a)
    response = client.post(f"/children/{missing_child.id}/break-glass", data={"reason": REASON})
    assert response.status_code == 404
    assert count(BreakGlassGrant) == 0


@pytest.mark.parametrize("reason", ["", "   ", "urgent", "   too short   "])
def test_break_glass_needs_a_real_reason(client, world, login, missing_child, reason):
    login(world.oncall)
    response = client.post(f"/children/{missing_child.id}/break-glass", data={"reason": reason})
    assert response.status_code == 422
    assert "at least 10 characters" in field_error(response.text, "reason")
    assert count(BreakGlassGrant) == 0
    assert count(AuditEvent, AuditEvent.action == "break_glass.grant") == 0
    assert client.get(f"/children/{missing_child.id}").status_code == 404


def test_break_glass_grants_twelve_audited_hours(client, world, login, clock, missing_child,
                                                 make_child, make_episode):
    other_missing = make_child(world.cw_a, "M-2", first_name="Nico", last_name="North")
    make_episode(other_missing, world.cw_a, status="in_contact_location_unknown")
    login(world.oncall)
    assert "Mia M." in client.get(f"/children/{missing_child.id}/break-glass").text
    now = clock.now()

    response = client.post(f"/children/{missing_child.id}/break-glass", data={"reason": REASON})

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/children/{missing_child.id}")
    grant = fresh().scalars(select(BreakGlassGrant)).one()
    assert (grant.user_id, grant.child_id) == (world.oncall.id, missing_child.id)
    assert grant.granted_at == now
    assert grant.expires_at == now + timedelta(hours=12)
    assert grant.reason == REASON
    event = fresh().scalars(select(AuditEvent).where(AuditEvent.action == "break_glass.grant")).one()
    assert (event.actor_id, event.child_id, event.entity_id) == (world.oncall.id, missing_child.id,
                                                                 str(grant.id))
    assert REASON not in event.details and "02:10" not in event.details
    assert json.loads(event.details)["reason"] == fingerprint(REASON)

    page = client.get(f"/children/{missing_child.id}")
    assert page.status_code == 200
    assert SENSITIVE_HEADING in page.text and "Seizure medication" in page.text
    caseload = client.get("/caseload").text
    assert "Mia Moss" in caseload and "1 child" in caseload
    assert "Nico North" not in caseload and "Alice Avery" not in caseload
    assert client.get(f"/children/{other_missing.id}").status_code == 404

    clock.advance(hours=11, minutes=59)
    assert client.get(f"/children/{missing_child.id}").status_code == 200
    clock.advance(minutes=2)  # 12 h and 1 min after the grant
    assert client.get(f"/children/{missing_child.id}").status_code == 404
    assert client.get(f"/children/{missing_child.id}/status").status_code == 404
    assert "Mia Moss" not in client.get("/caseload").text


def test_on_call_with_a_grant_can_record_the_return(client, world, login, missing_child):
    login(world.oncall)
    client.post(f"/children/{missing_child.id}/break-glass", data={"reason": REASON})
    episode = fresh().scalars(select(Episode).where(Episode.child_id == missing_child.id)).one()
    response = client.post(f"/episodes/{episode.id}/located", data={
        "located_at": "2026-03-02T13:45", "located_where": "in_state",
        "located_place": "Bus station", "located_by": "Springfield police",
        "status": "located_pending_return", "note": "Found at the bus station by police"})
    assert response.status_code == 303
    change = fresh().scalars(select(StatusChange).where(
        StatusChange.child_id == missing_child.id).order_by(StatusChange.id.desc())).first()
    assert (change.status, change.set_by_id) == ("located_pending_return", world.oncall.id)


def test_a_grant_ends_with_the_episode(client, world, login, missing_child):
    login(world.oncall)
    client.post(f"/children/{missing_child.id}/break-glass", data={"reason": REASON})
    assert client.get(f"/children/{missing_child.id}").status_code == 200
    with db.writing() as s:
        episode = s.scalars(select(Episode).where(Episode.child_id == missing_child.id)).one()
        episode.ended_at = episode.discovered_at  # ended, e.g. custody released
    assert client.get(f"/children/{missing_child.id}").status_code == 404
    assert "Mia Moss" not in client.get("/caseload").text


@pytest.fixture
def searchable(world, make_child):
    make_child(world.cw_a, "A-9", first_name="Zed", last_name="Zulu")
    return world


def test_htmx_search_gets_only_the_caseload_partial(htmx_client, searchable, login):
    login(searchable.cw_a, target=htmx_client)
    response = htmx_client.get("/caseload?q=avery")
    assert response.status_code == 200
    assert "hx-request" in response.vary
    assert "<html" not in response.text and "<h1" not in response.text
    assert 'class="caseload plain"' in response.text
    assert "Alice Avery" in response.text and "Zed Zulu" not in response.text
    assert "1 child matching “avery”" in response.text


def test_plain_search_gets_the_full_page(client, searchable, login):
    login(searchable.cw_a)
    response = client.get("/caseload?q=avery")
    assert response.status_code == 200
    assert "hx-request" in response.vary
    assert response.text.lstrip().startswith("<!doctype html>")
    assert "<h1>My caseload</h1>" in response.text
    assert 'id="caseload-list"' in response.text
    assert "Alice Avery" in response.text and "Zed Zulu" not in response.text


@pytest.mark.parametrize("header", ["HX-Boosted", "HX-History-Restore-Request"])
def test_boosted_and_history_restore_requests_get_the_full_page(htmx_client, searchable, login,
                                                                 header):
    login(searchable.cw_a, target=htmx_client)
    response = htmx_client.get("/caseload?q=zulu", headers={header: "true"})
    assert response.status_code == 200
    assert "hx-request" in response.vary
    assert "<html" in response.text and 'id="caseload-list"' in response.text
    assert "Zed Zulu" in response.text and "Alice Avery" not in response.text


def test_grant_access_itself_refuses_what_the_view_keeps_out(app, world, missing_child):
    """The rule holds without the view in front of it, for any later caller."""
    with pytest.raises(GrantRefused, match="no open missing episode"):
        with db.writing() as s:
            grant_access(s, world.oncall, world.child_a, REASON)
    with pytest.raises(GrantRefused, match="Only on-call workers"):
        with db.writing() as s:
            grant_access(s, world.cw_a, missing_child, REASON)
    assert count(BreakGlassGrant) == 0
    with db.writing() as s:
        grant = grant_access(s, world.oncall, missing_child, f"  {REASON}  ")
    assert fresh().get(BreakGlassGrant, grant.id).reason == REASON
