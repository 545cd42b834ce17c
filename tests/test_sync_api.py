"""The sync API (DESIGN §8): 401 JSON, the session check, and exactly-once batches."""
import threading
import uuid
from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import func, select

from helpers import fresh, utc
from fieldapp import db
from fieldapp.models import (AuditEvent, ClientOp, DeviceCheckin, Episode, EpisodeSummary,
                             SearchContact, StepEntry, User)
from fieldapp.policy import policy_of
from fieldapp.stages import ensure_stage
from fieldapp.sync import apply_batch

POLICE = {"agency": "Springfield PD", "phone": "417-555-0100", "report_number": "R-1",
          "officer": "Officer Diaz", "reported_by": "Caseworker"}
NCMEC = {"case_number": "NC-77", "method": "Phone", "reported_by": "Caseworker"}


def _iso(instant):
    return instant.isoformat()


def step_op(episode, clock, step_key="report_law_enforcement", evidence=POLICE, **fields):
    return {"uuid": str(uuid.uuid4()), "kind": "step_entry", "episode_id": episode.id,
            "step_key": step_key, "recorded_at": _iso(clock.now() - timedelta(minutes=5)),
            "policy_version": "missouri-2023",
            "fields": {"outcome": "done", "done_at": _iso(clock.now() - timedelta(minutes=20)),
                       "reason": "", "evidence": dict(evidence), **fields}}


def contact_op(episode, clock, **fields):
    return {"uuid": str(uuid.uuid4()), "kind": "search_contact", "episode_id": episode.id,
            "recorded_at": _iso(clock.now() - timedelta(minutes=5)),
            "fields": {"purpose": "search", "person": "Aunt May", "relationship": "relative",
                       "method": "phone", "contacted_at": _iso(clock.now() - timedelta(minutes=15)),
                       "reached": "reached", "learned": "Saw her at the mall", **fields}}


def batch(clock, *ops, device_offset=timedelta(0)):
    return {"device_time": _iso(clock.now() + device_offset), "held": len(ops), "ops": list(ops)}


def _count(model):
    return fresh().scalar(select(func.count()).select_from(model))


@pytest.fixture
def episode(world, make_episode, clock):
    return make_episode(world.child_a, world.cw_a, t0=clock.now() - timedelta(hours=2))


def test_anonymous_api_requests_get_401_json_not_a_redirect(client):
    for response in (client.get("/api/v1/session"), client.post("/api/v1/sync", json={"ops": []})):
        assert response.status_code == 401
        assert response.is_json and response.get_json() == {"error": "login required"}
        assert "Location" not in response.headers
    # Pages outside /api still send anonymous users to the login page.
    assert client.get("/work").status_code == 302


def test_unknown_api_paths_answer_json(client, world, login):
    login(world.cw_a)
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.get_json() == {"error": "not found"}
    assert client.get("/api/v1/sync").status_code == 405
    assert client.get("/api/v1/sync").is_json
    assert not client.get("/no-such-page").is_json


def test_the_session_endpoint_returns_the_user_and_a_csrf_token(client, world, login, clock):
    login(world.cw_a)
    body = client.get("/api/v1/session").get_json()
    assert body["user"] == {"id": world.cw_a.id, "username": "cw.a", "display_name": "Cw.A",
                            "role": "caseworker"}
    assert body["csrf_token"]
    assert body["server_time"] == clock.now().isoformat()


def test_a_mixed_batch_applies_every_good_op_and_rejects_the_bad_one(client, world, login, episode,
                                                                     clock):
    login(world.cw_a)
    good_step = step_op(episode, clock)
    bad_step = step_op(episode, clock, step_key="report_ncmec", evidence={"method": "Fax"})
    contact = contact_op(episode, clock)
    unknown = {**contact_op(episode, clock), "kind": "photo"}
    unreadable = step_op(episode, clock, step_key="report_ncmec", evidence=NCMEC,
                         done_at="last Tuesday")
    ops = [good_step, bad_step, contact, unknown, unreadable, "not an op"]
    response = client.post("/api/v1/sync", json=batch(clock, *ops))
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == ["applied", "rejected", "applied", "rejected",
                                              "rejected", "rejected"]
    assert [r["uuid"] for r in results[:5]] == [op["uuid"] for op in ops[:5]]
    assert set(results[1]["errors"]) == {"ev_case_number", "ev_method", "ev_reported_by"}
    assert results[3]["reason"] == "unknown kind"
    assert "done_at" in results[4]["errors"]
    session = fresh()
    entry = session.scalars(select(StepEntry)).one()
    assert entry.client_uuid == good_step["uuid"] and entry.clock_skew is False
    assert results[0]["response"] == {"entry_id": entry.id, "step": "report_law_enforcement"}
    assert session.scalars(select(SearchContact)).one().client_uuid == contact["uuid"]
    assert set(session.scalars(select(ClientOp.uuid))) == {good_step["uuid"], contact["uuid"]}


def test_replaying_a_batch_gives_duplicates_and_stores_each_op_once(client, world, login, episode,
                                                                    clock):
    login(world.cw_a)
    sent = batch(clock, step_op(episode, clock), contact_op(episode, clock))
    first = client.post("/api/v1/sync", json=sent).get_json()["results"]
    again = client.post("/api/v1/sync", json=sent).get_json()["results"]
    assert [r["status"] for r in first] == ["applied", "applied"]
    assert [r["status"] for r in again] == ["duplicate", "duplicate"]
    assert [r["response"] for r in again] == [r["response"] for r in first]
    assert _count(StepEntry) == 1 and _count(SearchContact) == 1 and _count(ClientOp) == 2


def test_the_same_uuid_with_different_fields_is_a_conflict(client, world, login, episode, clock):
    login(world.cw_a)
    op = step_op(episode, clock)
    client.post("/api/v1/sync", json=batch(clock, op))
    changed = {**op, "fields": {**op["fields"], "evidence": {**POLICE, "report_number": "R-2"}}}
    result = client.post("/api/v1/sync", json=batch(clock, changed)).get_json()["results"][0]
    assert result["status"] == "conflict" and "different content" in result["reason"]
    entry = fresh().scalars(select(StepEntry)).one()
    assert '"R-1"' in entry.evidence


@pytest.mark.parametrize("offset, flagged", [(timedelta(minutes=10), True),
                                             (-timedelta(minutes=10), True),
                                             (timedelta(minutes=2), False)])
def test_a_skewed_device_clock_flags_every_entry_of_the_batch(client, world, login, episode, clock,
                                                              offset, flagged):
    login(world.cw_a)
    sent = batch(clock, step_op(episode, clock), contact_op(episode, clock), device_offset=offset)
    body = client.post("/api/v1/sync", json=sent).get_json()
    assert [r["status"] for r in body["results"]] == ["applied", "applied"]
    assert body["clock_skew"] is flagged
    session = fresh()
    assert session.scalars(select(StepEntry)).one().clock_skew is flagged
    assert session.scalars(select(SearchContact)).one().clock_skew is flagged


def test_another_caseworkers_episode_is_rejected_and_nothing_is_written(client, world, login,
                                                                        make_episode, clock):
    theirs = make_episode(world.child_b, world.cw_b)
    login(world.cw_a)
    sent = batch(clock, step_op(theirs, clock), contact_op(theirs, clock),
                 {**step_op(theirs, clock), "episode_id": 999_999})
    results = client.post("/api/v1/sync", json=sent).get_json()["results"]
    assert [(r["status"], r["reason"]) for r in results] == [("rejected", "not found")] * 3
    assert _count(StepEntry) == 0 and _count(SearchContact) == 0 and _count(ClientOp) == 0


def test_a_case_that_left_the_users_caseload_is_a_conflict_and_old_ops_stay_duplicates(
        client, world, login, episode, clock):
    login(world.cw_a)
    done = step_op(episode, clock)
    client.post("/api/v1/sync", json=batch(clock, done))
    with db.writing() as s:
        s.get(type(world.child_a), world.child_a.id).caseworker_id = world.cw_a2.id
    results = client.post("/api/v1/sync", json=batch(
        clock, done, contact_op(episode, clock))).get_json()["results"]
    assert [r["status"] for r in results] == ["duplicate", "conflict"]
    assert "no longer on your caseload" in results[1]["reason"]
    assert _count(SearchContact) == 0


@pytest.mark.parametrize("body, status", [(b"{not json", 400), (b"[1, 2]", 400),
                                          (b'{"ops": "x"}', 400),
                                          (b'{"ops": [], "device_time": "soon"}', 400)])
def test_malformed_bodies_get_400_json(client, world, login, body, status):
    login(world.cw_a)
    response = client.post("/api/v1/sync", data=body, content_type="application/json")
    assert response.status_code == status and response.is_json
    assert response.get_json()["error"]


def test_an_oversized_batch_is_refused_whole(client, world, login, episode, clock):
    login(world.cw_a)
    response = client.post("/api/v1/sync", json={"ops": [contact_op(episode, clock)] * 501})
    assert response.status_code == 413 and response.is_json
    assert _count(SearchContact) == 0


def test_twenty_concurrent_replays_store_each_op_exactly_once(app, world, episode, clock):
    sent = batch(clock, step_op(episode, clock), contact_op(episode, clock),
                 step_op(episode, clock, step_key="report_ncmec", evidence=NCMEC))
    start = threading.Barrier(20)
    statuses, failures = [], []

    def replay():
        try:
            with app.app_context():
                start.wait()
                try:
                    with db.writing() as s:
                        user = s.get(User, world.cw_a.id)
                        outcome = apply_batch(s, user, sent, clock.now())
                    statuses.append([r["status"] for r in outcome["results"]])
                finally:
                    db.session().close()
                    g.pop("db_session", None)
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=replay) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(statuses) == ([["applied"] * 3] + [["duplicate"] * 3] * 19)
    session = fresh()
    for op in sent["ops"]:
        model = StepEntry if op["kind"] == "step_entry" else SearchContact
        assert session.scalar(select(func.count()).select_from(model)
                              .where(model.client_uuid == op["uuid"])) == 1
    assert _count(ClientOp) == 3


def test_sync_needs_the_csrf_token_from_the_session_endpoint(app, client, world, login, episode,
                                                             clock):
    login(world.cw_a)
    app.config["WTF_CSRF_ENABLED"] = True
    sent = batch(clock, contact_op(episode, clock))
    refused = client.post("/api/v1/sync", json=sent)
    assert refused.status_code == 400 and refused.is_json
    assert _count(SearchContact) == 0
    token = client.get("/api/v1/session").get_json()["csrf_token"]
    accepted = client.post("/api/v1/sync", json=sent, headers={"X-CSRFToken": token})
    assert accepted.status_code == 200
    assert accepted.get_json()["results"][0]["status"] == "applied"


def test_an_expired_session_posting_without_a_token_gets_401_not_a_csrf_error(app, client):
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post("/api/v1/sync", json={"ops": []})
    assert response.status_code == 401
    assert response.get_json() == {"error": "login required"}


def test_a_typed_time_without_a_zone_is_read_in_the_agencys_zone_as_the_forms_do(
        client, world, login, episode, clock):
    login(world.cw_a)
    # 2026-03-02 20:00 UTC is 14:00 in Chicago (CST, UTC-6); the worker typed 13:40 local.
    op = step_op(episode, clock, done_at="2026-03-02T13:40")
    contact = contact_op(episode, clock, contacted_at="2026-03-02T13:45")
    results = client.post("/api/v1/sync", json=batch(clock, op, contact)).get_json()["results"]
    assert [r["status"] for r in results] == ["applied", "applied"]
    session = fresh()
    assert session.scalars(select(StepEntry)).one().done_at == utc(2026, 3, 2, 19, 40)
    assert session.scalars(select(SearchContact)).one().contacted_at == utc(2026, 3, 2, 19, 45)


def test_an_op_from_a_page_of_another_policy_version_is_a_conflict(client, world, login, episode,
                                                                    clock):
    login(world.cw_a)
    op = {**step_op(episode, clock), "policy_version": "missouri-2019"}
    result = client.post("/api/v1/sync", json=batch(clock, op)).get_json()["results"][0]
    assert result["status"] == "conflict" and "missouri-2023" in result["reason"]
    assert _count(StepEntry) == 0 and _count(ClientOp) == 0


def _approve_initial_response(episode_id, supervisor, clock):
    with db.writing() as s:
        stage = ensure_stage(s, s.get(Episode, episode_id), "initial_response")
        stage.state, stage.approved_at = "approved", clock.now() - timedelta(minutes=1)
        stage.approved_by_id, stage.approved_name = supervisor.id, "Sup.A"
        stage.approved_role = "supervisor"


def test_a_stage_approved_while_the_op_waited_is_a_conflict_until_sent_as_addendum(
        app, client, world, login, episode, clock):
    login(world.cw_a)
    queued = step_op(episode, clock)
    with app.app_context():
        _approve_initial_response(episode.id, world.sup_a, clock)
    first = client.post("/api/v1/sync", json=batch(clock, queued)).get_json()["results"][0]
    assert first["status"] == "conflict" and first["can_add_as_addendum"] is True
    assert "approved by Sup.A" in first["reason"]
    assert _count(StepEntry) == 0
    # The worker agrees: the same op, resent with their consent, joins an addendum.
    again = client.post("/api/v1/sync", json=batch(clock, {**queued, "as_addendum": True}))
    assert again.get_json()["results"][0]["status"] == "applied"
    entry = fresh().scalars(select(StepEntry)).one()
    assert entry.review_stage.addendum_of_id is not None
    # The contact log belongs to no stage, so contacts are never held back.
    contact = client.post("/api/v1/sync", json=batch(clock, contact_op(episode, clock)))
    assert contact.get_json()["results"][0]["status"] == "applied"


def test_each_sync_records_what_the_phone_still_holds_and_supervisors_see_it(
        client, world, login, episode, clock, make_user):
    device = str(uuid.uuid4())
    login(world.cw_a)
    bad = step_op(episode, clock, step_key="report_ncmec", evidence={"method": "Fax"})
    sent = {**batch(clock, step_op(episode, clock), bad, contact_op(episode, clock)),
            "device_id": device, "held": 5}
    client.post("/api/v1/sync", json=sent)
    checkin = fresh().scalars(select(DeviceCheckin)).one()
    # Five held, two settled by this batch: the rejected one and two beyond the batch remain.
    assert (checkin.user_id, checkin.device_id, checkin.held) == (world.cw_a.id, device, 3)
    assert checkin.checked_in_at == clock.now()

    client.post("/logout")
    login(world.sup_a)
    page = client.get("/reviews").get_data(as_text=True)
    assert "Cw.A's phone holds 3 unsent" in page
    client.post("/logout")
    login(world.sup_b)
    assert "phone holds" not in client.get("/reviews").get_data(as_text=True)

    client.post("/logout")
    login(world.cw_a)
    client.post("/api/v1/sync", json={**batch(clock), "device_id": device, "held": 0})
    assert fresh().scalars(select(DeviceCheckin)).one().held == 0
    client.post("/logout")
    login(world.sup_a)
    assert "phone holds" not in client.get("/reviews").get_data(as_text=True)


def test_discarded_ops_are_audited_once_by_uuid_and_can_never_be_applied(
        client, world, login, episode, clock):
    login(world.cw_a)
    thrown = step_op(episode, clock)
    notice = {"uuid": thrown["uuid"], "kind": "step_entry", "episode_id": episode.id,
              "discarded_at": clock.now().isoformat()}
    for _ in range(2):  # a phone that lost the answer sends the notice again
        response = client.post("/api/v1/sync", json={**batch(clock), "discarded": [notice]})
        assert response.status_code == 200
    events = fresh().scalars(select(AuditEvent).where(AuditEvent.action == "outbox_discarded")).all()
    assert len(events) == 1
    assert events[0].entity_id == thrown["uuid"] and events[0].child_id == world.child_a.id
    assert "Springfield" not in events[0].details and "R-1" not in events[0].details
    late = client.post("/api/v1/sync", json=batch(clock, thrown)).get_json()["results"][0]
    assert late["status"] == "conflict"
    assert _count(StepEntry) == 0


@pytest.mark.parametrize("extra", [{"device_id": "phone-1"}, {"discarded": "all"},
                                   {"discarded": [{"uuid": "x", "kind": "step_entry"}]}])
def test_an_unreadable_check_in_or_discard_refuses_the_whole_batch(client, world, login, episode,
                                                                   clock, extra):
    login(world.cw_a)
    response = client.post("/api/v1/sync", json={**batch(clock, contact_op(episode, clock)), **extra})
    assert response.status_code == 400 and response.is_json
    assert _count(SearchContact) == 0


def test_the_offline_list_holds_only_the_workers_open_episodes_and_no_sensitive_step(
        client, world, login, episode, make_episode, clock, policies):
    theirs = make_episode(world.child_b, world.cw_b)
    login(world.cw_a)
    body = client.get("/api/v1/offline").get_json()
    assert body["user_id"] == world.cw_a.id and body["offline_hours"] == 12
    pages = body["pages"]
    assert f"/episodes/{episode.id}" in pages and f"/episodes/{episode.id}/contacts" in pages
    assert f"/episodes/{episode.id}/steps/report_law_enforcement" in pages
    assert f"/episodes/{episode.id}/packet?details=skip" in pages  # the child is still missing
    sensitive = [s.key for s in policy_of(episode.policy_version).steps if s.sensitive]
    assert sensitive and not any(page.endswith(f"/steps/{key}") for key in sensitive
                                 for page in pages)
    assert not any(f"/episodes/{theirs.id}" in page for page in pages)
    for page in pages:  # each is a page the worker can open
        assert client.get(page).status_code == 200, page
    # Once the child is found, the packet (with its photo) is no longer kept.
    with db.writing() as s:
        s.get(Episode, episode.id).located_at = clock.now()
    assert not any("packet" in page for page in client.get("/api/v1/offline").get_json()["pages"])
    # The supervisor reads the team's cases at a desk: nothing for their phone to keep.
    client.post("/logout")
    login(world.sup_a)
    assert client.get("/api/v1/offline").get_json()["pages"] == []


def test_a_batch_leaves_each_episodes_summary_row_current(client, world, login, episode, clock):
    """Summary rows are rewritten once per episode at the end of a batch, in its transaction."""
    login(world.cw_a)
    report = step_op(episode, clock)
    bad = step_op(episode, clock, step_key="report_ncmec", evidence={"method": "Fax"})
    client.post("/api/v1/sync", json=batch(clock, report, bad, contact_op(episode, clock)))
    row = fresh().get(EpisodeSummary, episode.id)
    assert row.report_law_enforcement_at == clock.now() - timedelta(minutes=20)
    assert row.report_ncmec_at is None
    assert row.search_contacts_at == clock.now() - timedelta(minutes=15)
