"""Status changes (DESIGN §2): the form, the rules, the unapproved address and its review."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from fieldapp import create_app, db
from fieldapp.clock import FixedClock
from fieldapp.models import AuditEvent, Child, LocationReview, StatusChange
from fieldapp.status import (StatusChangeInvalid, UnapprovedLocation,
                             location_needs_reverification, review_location,
                             status_change_problems)

from helpers import field_error, fresh

ADDRESS = {"location_address": "1200 N Example Ave, Springfield MO",
           "location_adult": "Dana Reyes, aunt",
           "location_verified_how": "Home visit; the aunt's ID seen"}
NOTHING_SAVED = "Nothing was saved yet"


def history(child) -> list[StatusChange]:
    return list(fresh().scalars(select(StatusChange).where(StatusChange.child_id == child.id)
                                .order_by(StatusChange.id)))


def post_status(client, child, **fields):
    data = {"status": "whereabouts_unknown", "since": "2026-03-02T13:30", "note": "",
            "location_address": "", "location_adult": "", "location_verified_how": ""}
    data.update(fields)
    return client.post(f"/children/{child.id}/status", data=data)


def assert_refused(response, child, field_id: str, message: str):
    assert response.status_code == 422
    assert NOTHING_SAVED in response.text
    assert message in field_error(response.text, field_id)
    only = history(child)
    assert len(only) == 1  # the fixture's first row, nothing appended
    stored = fresh().get(Child, child.id)
    assert (stored.status, stored.status_since) == (only[0].status,
                                                     datetime(2025, 1, 6, 6, tzinfo=UTC))
    assert fresh().scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "child.status_change")) == 0


@pytest.fixture
def as_caseworker(client, world, login):
    login(world.cw_a)
    return world


@pytest.fixture
def in_contact(as_caseworker, make_child):
    """A child of cw_a's who texts but will not say where she is (no episode recorded here)."""
    return make_child(as_caseworker.cw_a, "C-1", status="in_contact_location_unknown",
                      first_name="Cara", last_name="Cole")


def test_the_form_offers_now_in_the_agency_zone(client, as_caseworker):
    page = client.get(f"/children/{as_caseworker.child_a.id}/status")
    assert page.status_code == 200
    assert 'value="2026-03-02T14:00"' in page.text  # 20:00 UTC is 14:00 in Chicago (CST)


def test_going_missing_needs_a_note(client, in_contact):
    response = post_status(client, in_contact, note="   ")
    assert_refused(response, in_contact, "note",
                   "A note is required when a child goes missing or is found.")


def test_going_missing_from_placement_is_sent_to_report_missing(client, as_caseworker):
    response = post_status(client, as_caseworker.child_a, note="Not back from school")
    assert_refused(response, as_caseworker.child_a, "status", "Report missing")


def test_a_time_in_the_future_is_refused(client, in_contact):
    response = post_status(client, in_contact, since="2026-03-02T14:05", note="Phone is off now")
    assert_refused(response, in_contact, "since", "This time is in the future.")


def test_a_time_before_the_current_status_is_refused(client, in_contact):
    # Her status began at 2025-01-06 00:00 in Chicago (06:00 UTC).
    response = post_status(client, in_contact, since="2025-01-05T23:59", note="Phone is off now")
    assert_refused(response, in_contact, "since",
                   "This is before the child's current status began")


@pytest.mark.parametrize("since", ["", "yesterday", "2026-02-30T10:00"])
def test_a_missing_or_unreadable_time_is_refused(client, in_contact, since):
    response = post_status(client, in_contact, since=since, note="Phone is off now")
    assert_refused(response, in_contact, "since", "Give the date and time")


@pytest.mark.parametrize("status, message", [
    ("located_pending_return", "cannot move straight to located, not yet returned"),
    ("in_placement", "The child is already in placement."),
    ("on_the_run", "Not a valid choice"),
])
def test_a_disallowed_status_is_refused(client, as_caseworker, status, message):
    response = post_status(client, as_caseworker.child_a, status=status, note="Checking")
    assert_refused(response, as_caseworker.child_a, "status", message)


@pytest.mark.parametrize("now, since_local, since_utc", [
    (datetime(2026, 3, 2, 20, 0, tzinfo=UTC), "2026-03-02T13:30",
     datetime(2026, 3, 2, 19, 30, tzinfo=UTC)),  # CST, UTC-6
    (datetime(2026, 7, 1, 20, 0, tzinfo=UTC), "2026-07-01T13:30",
     datetime(2026, 7, 1, 18, 30, tzinfo=UTC)),  # CDT, UTC-5
])
def test_a_valid_change_is_appended_at_the_right_instant(client, as_caseworker, in_contact, clock,
                                                         now, since_local, since_utc):
    clock.set(now)
    child = in_contact
    note = "Her phone went dead; nobody has heard from her since 13:40"

    response = post_status(client, child, since=since_local, note=note)

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/children/{child.id}")
    first, change = history(child)
    assert first.status == "in_contact_location_unknown"
    assert (change.status, change.since, change.note) == ("whereabouts_unknown", since_utc, note)
    assert (change.set_by_id, change.recorded_at) == (as_caseworker.cw_a.id, now)
    assert change.location_address is None
    stored = fresh().get(Child, child.id)
    assert (stored.status, stored.status_since) == ("whereabouts_unknown", since_utc)
    event = fresh().scalars(select(AuditEvent).where(
        AuditEvent.action == "child.status_change")).one()
    assert event.child_id == child.id and event.actor_id == as_caseworker.cw_a.id
    assert json.loads(event.details)["status"] == ["in_contact_location_unknown",
                                                   "whereabouts_unknown"]
    assert "phone went dead" not in event.details
    page = client.get(f"/children/{child.id}").text
    assert "Status recorded." in page
    assert "Whereabouts unknown</span> since" in page and note in page


def test_coming_back_from_missing_also_needs_a_note(client, in_contact):
    response = post_status(client, in_contact, status="located_pending_return")
    assert_refused(response, in_contact, "note", "A note is required")
    assert post_status(client, in_contact, status="located_pending_return",
                       note="Found at the library").status_code == 303
    assert fresh().get(Child, in_contact.id).status == "located_pending_return"
    assert [c.status for c in history(in_contact)] == ["in_contact_location_unknown",
                                                       "located_pending_return"]


def test_an_unapproved_address_needs_where_who_and_how(client, as_caseworker):
    response = post_status(client, as_caseworker.child_a, status="unapproved_location_known")
    assert response.status_code == 422
    assert "Give the address" in field_error(response.text, "location_address")
    assert "Name the adult present" in field_error(response.text, "location_adult")
    assert "Say how the address was verified" in field_error(response.text,
                                                             "location_verified_how")
    partly = post_status(client, as_caseworker.child_a, status="unapproved_location_known",
                         location_address=ADDRESS["location_address"], location_adult=" ")
    assert partly.status_code == 422
    assert field_error(partly.text, "location_address") == ""
    assert "Name the adult present" in field_error(partly.text, "location_adult")
    assert len(history(as_caseworker.child_a)) == 1
    assert fresh().get(Child, as_caseworker.child_a.id).status == "in_placement"


@pytest.fixture
def at_unapproved_address(client, as_caseworker):
    """child_a moved to a known unapproved address by cw_a, at the current instant."""
    child = as_caseworker.child_a
    response = post_status(client, child, status="unapproved_location_known",
                           since="2026-03-02T14:00", **ADDRESS)
    assert response.status_code == 303
    change = history(child)[-1]
    assert (change.location_address, change.location_adult, change.location_verified_how) == (
        ADDRESS["location_address"], ADDRESS["location_adult"], ADDRESS["location_verified_how"])
    return change


def test_an_unapproved_address_awaits_the_supervisor(client, world, login, at_unapproved_address):
    page = client.get(f"/children/{world.child_a.id}").text
    assert "Unapproved address awaiting a supervisor" in page
    assert "Awaiting a supervisor." in page
    assert "Record decision" not in page  # the caseworker cannot decide
    assert "Unapproved addresses to decide" not in client.get("/caseload").text

    login(world.sup_a)
    caseload = client.get("/caseload").text
    section = caseload.split("Unapproved addresses to decide", 1)
    assert len(section) == 2 and "Alice Avery" in section[1].split("</section>")[0]
    assert "Record decision" in client.get(f"/children/{world.child_a.id}").text

    login(world.sup_b)
    assert "Unapproved addresses to decide" not in client.get("/caseload").text


def test_the_supervisor_approves(client, world, login, clock, at_unapproved_address):
    login(world.sup_a)
    clock.advance(hours=2)
    response = client.post(f"/status-changes/{at_unapproved_address.id}/review",
                           data={"decision": "approve", "note": ""})
    assert response.status_code == 303
    review = fresh().scalars(select(LocationReview)).one()
    assert (review.status_change_id, review.decided_by_id, review.approved) == (
        at_unapproved_address.id, world.sup_a.id, True)
    assert review.decided_at == clock.now()
    page = client.get(f"/children/{world.child_a.id}").text
    assert "Decision recorded." in page
    assert "Approved by Sup.A" in page
    assert "awaiting a supervisor" not in page.lower()
    assert "Unapproved addresses to decide" not in client.get("/caseload").text
    again = client.post(f"/status-changes/{at_unapproved_address.id}/review",
                        data={"decision": "reject", "note": "Changed my mind"}, follow_redirects=True)
    assert "already been decided on" in again.text
    assert fresh().scalar(select(func.count()).select_from(LocationReview)) == 1


def test_a_rejection_needs_a_note(client, world, login, at_unapproved_address):
    login(world.sup_a)
    url = f"/status-changes/{at_unapproved_address.id}/review"
    refused = client.post(url, data={"decision": "reject", "note": "  "}, follow_redirects=True)
    assert "Say why the address is not approved." in refused.text
    assert fresh().scalar(select(func.count()).select_from(LocationReview)) == 0

    client.post(url, data={"decision": "reject", "note": "No beds; adult has a record"})
    review = fresh().scalars(select(LocationReview)).one()
    assert (review.approved, review.note) == (False, "No beds; adult has a record")
    assert "Not approved by Sup.A" in client.get(f"/children/{world.child_a.id}").text


@pytest.mark.parametrize("who, code", [("cw_a", 404), ("cw_a2", 404), ("sup_b", 404),
                                       ("oncall", 404), ("auditor", 403)])
def test_only_the_childs_supervisor_reviews(client, world, login, at_unapproved_address, who,
                                            code):
    login(getattr(world, who))
    response = client.post(f"/status-changes/{at_unapproved_address.id}/review",
                           data={"decision": "approve"})
    assert response.status_code == code
    assert fresh().scalar(select(func.count()).select_from(LocationReview)) == 0


def test_review_location_itself_wants_a_supervisor(world, at_unapproved_address):
    with pytest.raises(StatusChangeInvalid, match="Only a supervisor"):
        with db.writing() as s:
            review_location(s, s.get(StatusChange, at_unapproved_address.id), world.cw_a, True, "")
    assert fresh().scalar(select(func.count()).select_from(LocationReview)) == 0


def test_only_an_unapproved_address_can_be_reviewed(client, world, login):
    login(world.sup_a)
    placement_change = history(world.child_a)[0]
    response = client.post(f"/status-changes/{placement_change.id}/review",
                           data={"decision": "approve"}, follow_redirects=True)
    assert "Only a known unapproved address" in response.text
    assert fresh().scalar(select(func.count()).select_from(LocationReview)) == 0
    assert client.post("/status-changes/999999/review",
                       data={"decision": "approve"}).status_code == 404


def test_an_unapproved_address_is_flagged_after_30_days(client, world, clock,
                                                        at_unapproved_address):
    child = world.child_a
    clock.advance(days=30)  # exactly 30 days: not yet
    assert location_needs_reverification(fresh().get(Child, child.id)) is False
    assert "Re-verify address" not in client.get("/caseload").text
    assert "more than 30 days ago" not in client.get(f"/children/{child.id}").text

    clock.advance(minutes=1)
    assert location_needs_reverification(fresh().get(Child, child.id)) is True
    assert "Re-verify address" in client.get("/caseload").text
    assert "more than 30 days ago" in client.get(f"/children/{child.id}").text


def test_only_an_unapproved_address_goes_stale(client, as_caseworker, clock):
    clock.advance(days=400)
    assert location_needs_reverification(fresh().get(Child, as_caseworker.child_a.id)) is False
    caseload = client.get("/caseload").text
    assert "Alice Avery" in caseload and "Re-verify address" not in caseload


# The rules themselves, without a request or a database: only an app for the clock and settings.

RULES_NOW = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)


@pytest.fixture
def rules_app(tmp_path):
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "CLOCK": FixedClock(RULES_NOW),
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'never-opened.sqlite3'}",
                      "INSTANCE_PATH": str(tmp_path)})
    with app.app_context():
        yield app
    app.extensions["fieldapp.engine"].dispose()


def unsaved_child(status="in_placement", since=datetime(2026, 1, 1, 12, tzinfo=UTC)) -> Child:
    return Child(case_id="X-1", first_name="Una", last_name="Saved", status=status,
                 status_since=since)


def test_status_change_problems_without_a_request(rules_app):
    child = unsaved_child()
    an_hour_ago = RULES_NOW - timedelta(hours=1)
    place = UnapprovedLocation("12 Elm St", "Grandmother", "Phoned and visited")

    assert status_change_problems(child, "whereabouts_unknown", an_hour_ago, "Gone", None) == {}
    assert status_change_problems(child, "released_from_custody", RULES_NOW, "", None) == {}
    assert status_change_problems(child, "unapproved_location_known", an_hour_ago, "",
                                  place) == {}
    assert set(status_change_problems(child, "whereabouts_unknown", an_hour_ago, " ", None)) == {
        "note"}
    assert set(status_change_problems(
        child, "whereabouts_unknown", RULES_NOW + timedelta(minutes=1), "Gone", None)) == {"since"}
    assert set(status_change_problems(child, "whereabouts_unknown", child.status_since
                                      - timedelta(seconds=1), "Gone", None)) == {"since"}
    assert set(status_change_problems(child, "whereabouts_unknown", None, "Gone", None)) == {
        "since"}
    assert set(status_change_problems(child, "located_pending_return", an_hour_ago, "Found",
                                      None)) == {"status"}
    assert set(status_change_problems(child, "in_placement", an_hour_ago, "", None)) == {"status"}
    assert set(status_change_problems(child, "runaway", an_hour_ago, "x", None)) == {"status"}
    assert set(status_change_problems(child, "unapproved_location_known", an_hour_ago, "",
                                      None)) == {"location_address", "location_adult",
                                                 "location_verified_how"}
    assert set(status_change_problems(
        child, "unapproved_location_known", an_hour_ago, "",
        UnapprovedLocation("12 Elm St", "", "  "))) == {"location_adult", "location_verified_how"}


def test_leaving_a_missing_status_needs_a_note(rules_app):
    missing = unsaved_child("in_contact_location_unknown")
    an_hour_ago = RULES_NOW - timedelta(hours=1)
    assert set(status_change_problems(missing, "located_pending_return", an_hour_ago, "",
                                      None)) == {"note"}
    assert status_change_problems(missing, "located_pending_return", an_hour_ago,
                                  "Police found her", None) == {}
    assert set(status_change_problems(missing, "in_placement", an_hour_ago, "Back",
                                      None)) == {"status"}
