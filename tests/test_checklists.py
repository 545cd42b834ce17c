"""The checklists (DESIGN §3, §4): deadlines stored per step, entries with their four clocks,
the outcome rules, evidence types, idempotent replays, corrections, late entries, the screening
and its disclosure path, and the search contact log."""
from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.checklists import EntryInvalid, late_entry, record_item
from fieldapp.client_ops import OpConflict
from fieldapp.contacts import log_contact
from fieldapp.episodes import EpisodeInvalid, mark_located, mark_returned, open_episode
from fieldapp.models import (AuditEvent, Child, ClientOp, Episode, EpisodeStep, SearchContact,
                             StepEntry)

from helpers import count, field_error, fresh, utc

LE = "report_law_enforcement"
LE_EVIDENCE = {"ev_agency": "Springfield PD", "ev_phone": "(417) 555-0100",
               "ev_report_number": "26-004411", "ev_officer": "Sgt. Lee",
               "ev_reported_by": "Caseworker", "ev_escalation_troop": "", "ev_escalation_person": ""}
NCMEC_EVIDENCE = {"ev_case_number": "1498765", "ev_method": "Phone", "ev_reported_by": "Caseworker"}
CONTENTS_EVIDENCE = {"ev_photo_date": "2026-02-14", "ev_what_sent": "Photo and description to PD"}
DEVICE_CLOCK = "2026-03-02T19:58:00Z"  # the phone's clock at the tap, two minutes behind the server
NARRATIVE = "She said a man called Rick drove her to a motel on Route 66"


def entries(episode_id: int, step_key: str) -> list[StepEntry]:
    return list(fresh().scalars(
        select(StepEntry).join(EpisodeStep).where(EpisodeStep.episode_id == episode_id,
                                                  EpisodeStep.step_key == step_key)
        .order_by(StepEntry.id)))


def step_row(episode_id: int, step_key: str) -> EpisodeStep:
    return fresh().scalar(select(EpisodeStep).where(EpisodeStep.episode_id == episode_id,
                                                    EpisodeStep.step_key == step_key))


def step_form(outcome="done", done_at="2026-03-02T13:30", reason="", recorded_at=DEVICE_CLOCK,
              client_uuid=None, supersedes=None, **fields) -> dict:
    data = {"outcome": outcome, "done_at": done_at, "reason": reason,
            "recorded_at": recorded_at, "client_uuid": client_uuid or str(uuid.uuid4())}
    if supersedes is not None:
        data["supersedes"] = str(supersedes)
    data.update(fields)
    return data


def post_step(client, episode_id: int, step_key: str, **kwargs):
    return client.post(f"/episodes/{episode_id}/steps/{step_key}", data=step_form(**kwargs))


def record(episode_id: int, user, step_key: str, *, outcome="done", done_at=None,
           recorded_at=None, evidence=None, reason="", client_uuid=None, supersedes_id=None):
    with db.writing() as s:
        return record_item(s, s.get(Episode, episode_id), step_key, s.merge(user), outcome=outcome,
                           done_at=done_at or utc(2026, 3, 2, 19, 30), recorded_at=recorded_at,
                           raw_evidence=evidence or {}, reason=reason,
                           client_uuid=client_uuid or str(uuid.uuid4()),
                           supersedes_id=supersedes_id)


def raw(evidence: dict) -> dict:
    """Form evidence (ev_x) as the domain receives it (x)."""
    return {k.removeprefix("ev_"): v for k, v in evidence.items()}


def switch_user(login, user, client):
    """Log the same browser in as someone else."""
    assert login(user, target=client).status_code == 302


@pytest.fixture
def episode(client, world, login, make_episode):
    """Alice reported missing at 13:00 CST (19:00 UTC), an hour ago; her caseworker is logged in."""
    login(world.cw_a)
    return make_episode(world.child_a, world.cw_a)


@pytest.fixture
def returned(client, world, login, policies):
    """Alice went missing yesterday, was found six hours ago and has been back in care two hours."""
    login(world.cw_a)
    with db.writing() as s:
        child, worker = s.get(Child, world.child_a.id), s.merge(world.cw_a)
        episode = open_episode(s, child, worker, status="whereabouts_unknown",
                               discovered_at=utc(2026, 3, 1, 14), discovered_by_role="caseworker",
                               discovered_by_name="Cal Worker", how_missing="ran_away",
                               note="Did not come home")
        mark_located(s, episode, worker, located_at=utc(2026, 3, 2, 14), located_where="in_state",
                     located_place="Friend's flat", located_by="Springfield PD",
                     status="located_pending_return", note="Found")
        mark_returned(s, episode, worker, returned_at=utc(2026, 3, 2, 18),
                      setting="foster_family_nonrelative", provider_name="Maple House")
    return episode


# --- deadlines --------------------------------------------------------------------------------

def test_every_missing_step_stores_its_deadline_from_t0(episode, world):
    due = {s.step_key: s.due_at for s in fresh().scalars(
        select(EpisodeStep).where(EpisodeStep.episode_id == episode.id))}
    assert due == {
        "report_law_enforcement": utc(2026, 3, 2, 21),  # T0 + 2 h (missouri-2023)
        "report_ncmec": utc(2026, 3, 2, 21),
        "report_contents": utc(2026, 3, 2, 21),
        "inform_and_obtain": None,  # 24 h after the police report, which is not made yet
        "notify_juvenile_officer": utc(2026, 3, 3, 19),
        "notify_court_representative": utc(2026, 3, 3, 19),
        "notify_parents": utc(2026, 3, 3, 19),
        "protective_alert": utc(2026, 3, 3, 19),
        "update_living_arrangement": utc(2026, 3, 3, 19),
        "search_contacts": utc(2026, 3, 3, 19),  # the first contact within 24 h
        "follow_up_le_ncmec": utc(2026, 4, 1, 19),  # 720 h
    }
    record(episode.id, world.cw_a, LE, evidence=raw(LE_EVIDENCE), done_at=utc(2026, 3, 2, 19, 40))
    assert step_row(episode.id, "inform_and_obtain").due_at == utc(2026, 3, 3, 19, 40)
    assert step_row(episode.id, LE).due_at == utc(2026, 3, 2, 21)  # a stored deadline never moves


# --- recording --------------------------------------------------------------------------------

def test_record_item_keeps_four_clocks_the_actor_the_outcome_and_the_evidence(episode, world):
    op = str(uuid.uuid4())
    entry, claim = record(episode.id, world.cw_a, LE, evidence=raw(LE_EVIDENCE),
                          done_at=utc(2026, 3, 2, 19, 30), recorded_at=utc(2026, 3, 2, 19, 58),
                          client_uuid=op)
    assert claim.new
    [stored] = entries(episode.id, LE)
    assert stored.id == entry.id
    assert stored.done_at == utc(2026, 3, 2, 19, 30)
    assert stored.recorded_at == utc(2026, 3, 2, 19, 58)  # the device
    assert stored.received_at == utc(2026, 3, 2, 20)  # the server's clock
    assert stored.recorded_by_id == world.cw_a.id
    assert stored.outcome == "done"
    assert stored.client_uuid == op
    assert stored.supersedes_id is None
    assert json.loads(stored.evidence) == {"agency": "Springfield PD", "phone": "(417) 555-0100",
                                           "report_number": "26-004411", "officer": "Sgt. Lee",
                                           "reported_by": "Caseworker"}
    assert count(AuditEvent, AuditEvent.action == "checklist.record_item",
                 AuditEvent.entity_id == str(entry.id)) == 1


def test_a_step_posted_from_the_phone_stores_its_clocks(client, episode, world):
    op = str(uuid.uuid4())
    response = post_step(client, episode.id, LE, client_uuid=op, done_at="2026-03-02T13:30",
                         **LE_EVIDENCE)
    assert response.status_code == 303
    [stored] = entries(episode.id, LE)
    assert stored.done_at == utc(2026, 3, 2, 19, 30)  # 13:30 in Chicago
    assert stored.recorded_at == utc(2026, 3, 2, 19, 58)
    assert stored.received_at == utc(2026, 3, 2, 20)
    assert (stored.client_uuid, stored.recorded_by_id, stored.outcome) == (op, world.cw_a.id, "done")
    assert json.loads(stored.evidence)["report_number"] == "26-004411"


def test_without_javascript_the_device_clock_is_the_server_clock_and_the_server_makes_the_id(
        client, episode):
    response = post_step(client, episode.id, LE, recorded_at="", client_uuid="", **LE_EVIDENCE)
    assert response.status_code == 303
    [stored] = entries(episode.id, LE)
    assert stored.recorded_at == stored.received_at == utc(2026, 3, 2, 20)
    assert str(uuid.UUID(stored.client_uuid)) == stored.client_uuid
    assert fresh().get(ClientOp, stored.client_uuid).kind == "step_entry"


def test_done_at_later_than_the_device_clock_is_refused(client, episode, world):
    # The phone says 13:58 CST; the worker typed 13:59.
    response = post_step(client, episode.id, LE, done_at="2026-03-02T13:59", **LE_EVIDENCE)
    assert response.status_code == 422
    assert "later than the time on your phone" in field_error(response.text, "done_at")
    assert 'value="2026-03-02T13:59"' in response.text
    assert entries(episode.id, LE) == []
    assert count(ClientOp) == 0

    with pytest.raises(EntryInvalid) as refused:
        record(episode.id, world.cw_a, LE, evidence=raw(LE_EVIDENCE),
               done_at=utc(2026, 3, 2, 20, 1))  # no device clock: the server's 20:00 applies
    assert "done_at" in refused.value.errors
    assert entries(episode.id, LE) == []


def test_tried_needs_a_reason_and_the_police_report_also_needs_the_escalation(client, episode):
    response = post_step(client, episode.id, LE, outcome="attempted", reason="")
    assert response.status_code == 422
    assert "Say why it could not be done" in field_error(response.text, "reason")
    assert field_error(response.text, "ev_escalation_troop") == (
        "When the report is refused, record the escalation: state highway patrol troop.")
    assert field_error(response.text, "ev_escalation_person") == (
        "When the report is refused, record the escalation: person spoken to at the troop.")
    assert field_error(response.text, "ev_report_number") == ""  # no report number when refused
    assert entries(episode.id, LE) == []

    response = post_step(client, episode.id, LE, outcome="attempted",
                         reason="Desk sergeant refused: she is 17 and 'will come back'",
                         ev_agency="Springfield PD", ev_escalation_troop="Troop D, Springfield",
                         ev_escalation_person="Cpl. Hart")
    assert response.status_code == 303
    [stored] = entries(episode.id, LE)
    assert stored.outcome == "attempted"
    assert stored.reason == "Desk sergeant refused: she is 17 and 'will come back'"
    assert json.loads(stored.evidence) == {"agency": "Springfield PD",
                                           "escalation_troop": "Troop D, Springfield",
                                           "escalation_person": "Cpl. Hart"}
    page = client.get(f"/episodes/{episode.id}/steps/{LE}").text
    assert "Tried, could not" in page
    assert "Reason: Desk sergeant refused" in unescape(page)


def test_tried_on_another_step_needs_only_a_reason(client, episode):
    response = post_step(client, episode.id, "protective_alert", outcome="attempted", reason=" ")
    assert response.status_code == 422
    assert "Say why it could not be done" in field_error(response.text, "reason")
    assert "escalation" not in response.text.lower()
    assert post_step(client, episode.id, "protective_alert", outcome="attempted",
                     reason="System down; ticket raised").status_code == 303
    assert [e.outcome for e in entries(episode.id, "protective_alert")] == ["attempted"]


@pytest.mark.parametrize("step_key, evidence", [(LE, LE_EVIDENCE),
                                                ("report_ncmec", NCMEC_EVIDENCE)])
def test_not_applicable_is_never_offered_or_accepted_for_the_two_reports(
        client, episode, world, step_key, evidence):
    page = client.get(f"/episodes/{episode.id}/steps/{step_key}").text
    assert 'value="attempted"' in page
    assert 'value="not_applicable"' not in page
    assert "Not applicable" not in page

    response = post_step(client, episode.id, step_key, outcome="not_applicable",
                         reason="Provider already reported", **evidence)
    assert response.status_code == 422
    assert "'Not applicable' is not allowed for this step." in unescape(response.text)
    assert entries(episode.id, step_key) == []

    with pytest.raises(EntryInvalid) as refused:
        record(episode.id, world.cw_a, step_key, outcome="not_applicable", reason="Not needed")
    assert "not allowed" in refused.value.errors["outcome"]
    assert entries(episode.id, step_key) == []


def test_not_applicable_where_the_policy_allows_it_needs_a_reason(client, episode):
    page = client.get(f"/episodes/{episode.id}/steps/notify_parents").text
    assert 'value="not_applicable"' in page

    response = post_step(client, episode.id, "notify_parents", outcome="not_applicable")
    assert response.status_code == 422
    assert "Say why it does not apply" in field_error(response.text, "reason")
    assert entries(episode.id, "notify_parents") == []

    assert post_step(client, episode.id, "notify_parents", outcome="not_applicable",
                     reason="Parental rights terminated in 2021").status_code == 303
    [stored] = entries(episode.id, "notify_parents")
    assert (stored.outcome, stored.reason) == ("not_applicable", "Parental rights terminated in 2021")


@pytest.mark.parametrize("step_key, evidence, field, value, message", [
    ("report_contents", CONTENTS_EVIDENCE, "ev_photo_date", "14 Feb 2026", "Give a date as YYYY-MM-DD."),
    ("report_contents", CONTENTS_EVIDENCE, "ev_photo_date", "2026-02-30", "Give a date as YYYY-MM-DD."),
    (LE, LE_EVIDENCE, "ev_phone", "call the front desk", "Give a phone number"),
    (LE, LE_EVIDENCE, "ev_phone", "555-12", "Give a phone number"),
    (LE, LE_EVIDENCE, "ev_reported_by", "Neighbour", "Choose one of: Caseworker, Placement provider."),
    ("report_ncmec", NCMEC_EVIDENCE, "ev_method", "Fax", "Choose one of: Phone, Online."),
    (LE, LE_EVIDENCE, "ev_report_number", "  ", "Required: report number."),
])
def test_evidence_that_fails_its_type_is_refused_next_to_its_field(
        client, episode, step_key, evidence, field, value, message):
    response = post_step(client, episode.id, step_key, **{**evidence, field: value})
    assert response.status_code == 422
    assert "Not saved yet" in response.text
    assert message in field_error(response.text, field)
    assert [name for name in re.findall(r'id="([\w-]+)-error"', response.text)] == [field]
    # The other answers are kept for the worker to correct the one field.
    other = next(k for k in evidence if k != field and evidence[k])
    assert unescape(evidence[other]) in unescape(response.text)
    assert entries(episode.id, step_key) == []
    assert count(ClientOp) == 0


def test_a_step_outside_the_episodes_policy_is_not_found_and_records_nothing(
        client, episode, world):
    assert client.get(f"/episodes/{episode.id}/steps/take_a_photo").status_code == 404
    assert post_step(client, episode.id, "take_a_photo").status_code == 404
    # A real step that this episode has not raised (no trafficking identification yet).
    assert client.get(f"/episodes/{episode.id}/steps/trafficking_report").status_code == 404
    assert post_step(client, episode.id, "trafficking_report", ev_report_number="1",
                     ev_agency="PD").status_code == 404
    # A return step before the child is found.
    assert client.get(f"/episodes/{episode.id}/steps/medical_exam").status_code == 404

    with pytest.raises(EntryInvalid) as refused:
        record(episode.id, world.cw_a, "take_a_photo")
    assert "not part of this episode's checklist" in refused.value.errors["outcome"]
    assert count(StepEntry) == 0
    assert count(ClientOp) == 0


def goes_missing_again(episode, world):
    """Found at 13:20, missing again at 13:45: the first episode ends as missing_again."""
    with db.writing() as s:
        mark_located(s, s.get(Episode, episode.id), s.merge(world.cw_a),
                     located_at=utc(2026, 3, 2, 19, 20), located_where="in_state",
                     located_place="Park", located_by="PD", status="located_pending_return",
                     note="Found")
        open_episode(s, s.get(Child, world.child_a.id), s.merge(world.cw_a),
                     status="whereabouts_unknown", discovered_at=utc(2026, 3, 2, 19, 45),
                     discovered_by_role="caseworker", discovered_by_name="Cal",
                     how_missing="ran_away", note="Ran from the police station")


def test_an_episode_closed_by_missing_again_refuses_entries(client, episode, world):
    goes_missing_again(episode, world)
    assert fresh().get(Episode, episode.id).end_reason == "missing_again"

    for step_key, evidence in (("notify_located", {"ev_who": "PD"}), ("report_ncmec", NCMEC_EVIDENCE)):
        response = post_step(client, episode.id, step_key, done_at="2026-03-02T13:50", **evidence)
        assert response.status_code == 422, step_key
        assert "closed when the child went missing again" in unescape(response.text)
        assert entries(episode.id, step_key) == []
    with pytest.raises(EntryInvalid):
        record(episode.id, world.cw_a, "report_ncmec", evidence=raw(NCMEC_EVIDENCE),
               done_at=utc(2026, 3, 2, 19, 50))
    page = client.get(f"/episodes/{episode.id}/steps/notify_located").text
    assert "Closed: missing again" in page
    assert 'name="outcome"' not in page
    assert count(StepEntry) == 0


# --- idempotency ------------------------------------------------------------------------------

def test_the_same_submission_twice_is_stored_once_with_the_same_answer(client, episode):
    op = str(uuid.uuid4())
    first = post_step(client, episode.id, "report_ncmec", client_uuid=op, **NCMEC_EVIDENCE)
    again = post_step(client, episode.id, "report_ncmec", client_uuid=op, **NCMEC_EVIDENCE)
    # A retry from a phone whose clock moved on is still the same submission.
    later = post_step(client, episode.id, "report_ncmec", client_uuid=op,
                      recorded_at="2026-03-02T19:59:30Z", **NCMEC_EVIDENCE)

    assert first.status_code == again.status_code == later.status_code == 303
    assert first.headers["Location"] == again.headers["Location"] == later.headers["Location"] \
        == f"/episodes/{episode.id}/steps/report_contents"
    [stored] = entries(episode.id, "report_ncmec")
    assert stored.client_uuid == op
    assert stored.recorded_at == utc(2026, 3, 2, 19, 58)
    op_row = fresh().get(ClientOp, op)
    assert (op_row.kind, op_row.user_id) == ("step_entry", stored.recorded_by_id)
    assert json.loads(op_row.response) == {"entry_id": stored.id, "step": "report_ncmec"}
    assert count(AuditEvent, AuditEvent.action == "checklist.record_item") == 1


def test_a_replay_through_the_domain_returns_the_stored_answer(episode, world):
    op = str(uuid.uuid4())
    entry, claim = record(episode.id, world.cw_a, "report_ncmec", evidence=raw(NCMEC_EVIDENCE),
                          client_uuid=op)
    replayed, replay_claim = record(episode.id, world.cw_a, "report_ncmec",
                                    evidence=raw(NCMEC_EVIDENCE), client_uuid=op)
    assert claim.new and not replay_claim.new
    assert replayed is None
    assert replay_claim.response == {"entry_id": entry.id, "step": "report_ncmec"}
    assert [e.id for e in entries(episode.id, "report_ncmec")] == [entry.id]


def test_the_same_id_with_different_content_is_refused_and_nothing_is_stored(
        client, episode, world, make_user):
    op = str(uuid.uuid4())
    assert post_step(client, episode.id, "report_ncmec", client_uuid=op,
                     **NCMEC_EVIDENCE).status_code == 303
    response = post_step(client, episode.id, "report_ncmec", client_uuid=op,
                         **{**NCMEC_EVIDENCE, "ev_case_number": "1498799"})
    assert response.status_code == 422
    assert "already used for different content. Nothing was saved" in response.text
    [stored] = entries(episode.id, "report_ncmec")
    assert json.loads(stored.evidence)["case_number"] == "1498765"

    with pytest.raises(OpConflict):
        record(episode.id, world.cw_a, "report_ncmec", evidence=raw(NCMEC_EVIDENCE),
               done_at=utc(2026, 3, 2, 19, 31), client_uuid=op)
    with pytest.raises(OpConflict):  # another worker's device cannot reuse it either
        record(episode.id, world.sup_a, "report_ncmec", evidence=raw(NCMEC_EVIDENCE), client_uuid=op)
    with pytest.raises(OpConflict), db.writing() as s:  # nor another kind of write
        log_contact(s, s.get(Episode, episode.id), s.merge(world.cw_a), person="Aunt",
                    relationship="relative", method="phone", contacted_at=utc(2026, 3, 2, 19, 30),
                    reached="reached", learned="", purpose="search", client_uuid=op)
    assert len(entries(episode.id, "report_ncmec")) == 1
    assert count(SearchContact) == 0
    assert count(ClientOp) == 1


# --- corrections and late entries -------------------------------------------------------------

def test_a_correction_supersedes_the_old_entry_and_both_stay_visible(client, episode):
    assert post_step(client, episode.id, LE, **LE_EVIDENCE).status_code == 303
    [original] = entries(episode.id, LE)

    form = client.get(f"/episodes/{episode.id}/steps/{LE}?correct={original.id}").text
    assert f'name="supersedes" value="{original.id}"' in form
    assert "You are correcting an earlier entry" in form

    response = post_step(client, episode.id, LE, supersedes=original.id,
                         **{**LE_EVIDENCE, "ev_report_number": "26-004417"})
    assert response.status_code == 303
    old, new = entries(episode.id, LE)
    assert old.id == original.id and new.supersedes_id == original.id
    assert json.loads(old.evidence)["report_number"] == "26-004411"  # never overwritten
    assert json.loads(new.evidence)["report_number"] == "26-004417"

    page = client.get(f"/episodes/{episode.id}/steps/{LE}").text
    recorded = re.search(r'<ol class="history">(.*?)</ol>', page, re.S).group(1)
    history = re.findall(r"<li( class=\"superseded\")?>(.*?)</li>", recorded, re.S)
    assert len(history) == 2
    (old_class, old_html), (new_class, new_html) = history
    assert old_class and "(corrected by a later entry)" in old_html and "26-004411" in old_html
    assert not new_class and "corrected by a later entry" not in new_html and "26-004417" in new_html
    assert page.count("Correct this entry") == 1

    # The step's state follows the newest entry: corrected to "tried, could not", it is open again.
    assert post_step(client, episode.id, LE, supersedes=new.id, outcome="attempted",
                     reason="Report was for the wrong child; police now refuse",
                     ev_escalation_troop="Troop D", ev_escalation_person="Cpl. Hart").status_code == 303
    page = client.get(f"/episodes/{episode.id}").text
    row = re.search(rf'<li class="step-row state-(\w+)"[^>]*>\s*<a href="/episodes/{episode.id}/steps/{LE}"',
                    page)
    assert row.group(1) == "attempted"
    assert len(entries(episode.id, LE)) == 3


def test_an_entry_can_be_corrected_only_once(client, episode):
    post_step(client, episode.id, LE, **LE_EVIDENCE)
    [original] = entries(episode.id, LE)
    assert post_step(client, episode.id, LE, supersedes=original.id, **LE_EVIDENCE).status_code == 303
    response = post_step(client, episode.id, LE, supersedes=original.id,
                         **{**LE_EVIDENCE, "ev_officer": "Sgt. Leigh"})
    assert response.status_code == 422
    assert "already corrected" in response.text
    assert len(entries(episode.id, LE)) == 2


def test_an_entry_recorded_more_than_a_day_after_it_was_done_is_flagged_late(
        client, world, login, make_episode):
    login(world.cw_a)
    episode = make_episode(world.child_a, world.cw_a, t0=utc(2026, 2, 27, 12))
    assert post_step(client, episode.id, LE, done_at="2026-02-27T08:00", **LE_EVIDENCE).status_code == 303
    assert post_step(client, episode.id, "report_ncmec", done_at="2026-03-01T20:00",
                     **NCMEC_EVIDENCE).status_code == 303

    assert "Late entry" in client.get(f"/episodes/{episode.id}/steps/{LE}").text
    assert "Late entry" not in client.get(f"/episodes/{episode.id}/steps/report_ncmec").text
    [late] = entries(episode.id, LE)
    [on_time] = entries(episode.id, "report_ncmec")
    assert late_entry(late) and not late_entry(on_time)


def test_the_late_entry_boundary_is_twenty_four_hours():
    done = utc(2026, 3, 1, 12)
    assert not late_entry(StepEntry(done_at=done, recorded_at=done + timedelta(hours=24)))
    assert late_entry(StepEntry(done_at=done, recorded_at=done + timedelta(hours=24, seconds=1)))


# --- the trafficking screen -------------------------------------------------------------------

def screen(answers: dict[str, str]) -> dict:
    return {f"q_{k}": v for k, v in answers.items()}


NEGATIVE = {"money_for_needs": "no", "controlled": "no", "asked_to_work": "declined",
            "feel_unsafe": "no"}


def test_the_screening_form_has_no_narrative_field(client, returned):
    page = client.get(f"/episodes/{returned.id}/steps/trafficking_screening").text
    form = re.search(r'<form [^>]*class="card step-form">.*?</form>', page, re.S).group(0)
    assert re.findall(r"<textarea[^>]*>", page) == ['<textarea id="reason" name="reason">']
    assert sorted(set(re.findall(r'name="([\w-]+)"', form))) == sorted(
        ["csrf_token", "client_uuid", "recorded_at", "outcome", "done_at", "disclosed",
         "cac_referral_date", "reason"] + [f"q_{k}" for k in NEGATIVE])
    assert "Demonstration only" in page


def test_a_disclosure_stores_only_the_fact_the_stop_and_the_referral_date(client, returned, world):
    response = post_step(client, returned.id, "trafficking_screening", done_at="2026-03-02T13:40",
                         disclosed="yes", cac_referral_date="2026-03-02",
                         q_money_for_needs="yes", q_controlled="yes", narrative=NARRATIVE,
                         ev_notes=NARRATIVE, notes=NARRATIVE, details=NARRATIVE, reason=NARRATIVE)
    assert response.status_code == 303
    [stored] = entries(returned.id, "trafficking_screening")
    assert stored.outcome == "done"
    assert json.loads(stored.evidence) == {"result": "disclosed", "interview_stopped": True,
                                           "cac_referral_date": "2026-03-02"}
    assert stored.reason == ""
    audit = [e.details for e in fresh().scalars(select(AuditEvent))]
    assert not any("Rick" in details or "motel" in details for details in audit)

    page = client.get(f"/episodes/{returned.id}/steps/trafficking_screening").text
    assert "Stopped; referred to a CAC on 2026-03-02" in page
    assert "Rick" not in page


def test_a_disclosure_needs_the_referral_date(client, returned):
    response = post_step(client, returned.id, "trafficking_screening", done_at="2026-03-02T13:40",
                         disclosed="yes", cac_referral_date="")
    assert response.status_code == 422
    assert "Give the date of the CAC referral" in field_error(response.text, "cac_referral_date")
    assert entries(returned.id, "trafficking_screening") == []


def test_every_screening_question_needs_an_answer(client, returned):
    answers = {**NEGATIVE}
    del answers["controlled"]
    response = post_step(client, returned.id, "trafficking_screening", done_at="2026-03-02T13:40",
                         disclosed="no", **screen(answers))
    assert response.status_code == 422
    assert field_error(response.text, "q_controlled") == "Choose an answer."
    assert entries(returned.id, "trafficking_screening") == []


def test_a_positive_screen_makes_the_cac_referral_required_and_alerts_the_supervisor(
        client, returned, world, login):
    answers = {**NEGATIVE, "controlled": "yes"}
    assert post_step(client, returned.id, "trafficking_screening", done_at="2026-03-02T13:40",
                     disclosed="no", **screen(answers)).status_code == 303
    [stored] = entries(returned.id, "trafficking_screening")
    assert json.loads(stored.evidence) == {"result": "positive", "answers": answers,
                                           "instrument": "fieldapp-demo-screen"}

    page = client.get(f"/episodes/{returned.id}/steps/cac_referral").text
    assert 'value="not_applicable"' not in page
    refused = post_step(client, returned.id, "cac_referral", outcome="not_applicable",
                        reason="Screen was borderline")
    assert refused.status_code == 422
    assert "'Not applicable' is not allowed for this step after a positive screen." in unescape(
        refused.text)
    assert entries(returned.id, "cac_referral") == []

    switch_user(login, world.sup_a, client)
    work = client.get("/work").text
    alert = re.search(r'<section class="card notice".*?</section>', work, re.S).group(0)
    assert "CAC referral required" in alert
    assert "Alice Avery" in alert
    assert f'href="/episodes/{returned.id}/steps/cac_referral"' in alert

    # The caseworker makes the referral; the alert goes.
    switch_user(login, world.cw_a, client)
    assert post_step(client, returned.id, "cac_referral", done_at="2026-03-02T13:50",
                     ev_referral_date="2026-03-02", ev_center="Ozarks CAC").status_code == 303
    switch_user(login, world.sup_a, client)
    assert "CAC referral required" not in client.get("/work").text


def test_a_negative_screen_leaves_the_cac_referral_optional_and_raises_no_alert(
        client, returned, world, login):
    assert post_step(client, returned.id, "trafficking_screening", done_at="2026-03-02T13:40",
                     disclosed="no", **screen(NEGATIVE)).status_code == 303
    assert json.loads(entries(returned.id, "trafficking_screening")[0].evidence)["result"] == "negative"
    assert 'value="not_applicable"' in client.get(f"/episodes/{returned.id}/steps/cac_referral").text
    switch_user(login, world.sup_a, client)
    assert "CAC referral required" not in client.get("/work").text


def test_a_disclosure_is_a_positive_screen(client, returned, world, login):
    post_step(client, returned.id, "trafficking_screening", done_at="2026-03-02T13:40",
              disclosed="yes", cac_referral_date="2026-03-02")
    assert 'value="not_applicable"' not in client.get(f"/episodes/{returned.id}/steps/cac_referral").text
    switch_user(login, world.sup_a, client)
    assert "CAC referral required" in client.get("/work").text


# --- the search contact log -------------------------------------------------------------------

def contact_form(**fields) -> dict:
    data = {"purpose": "search", "person": "Dana Reyes", "relationship": "relative",
            "method": "phone", "contacted_at": "2026-03-02T13:40", "reached": "reached",
            "learned": "Thinks she is with a school friend on Elm St",
            "client_uuid": str(uuid.uuid4()), "recorded_at": DEVICE_CLOCK}
    data.update(fields)
    return data


def test_a_contact_is_logged_once_and_the_episode_shows_the_next_monthly_contact(
        client, episode, world):
    overview = client.get(f"/episodes/{episode.id}").text
    # Before any contact: the first one is due 24 h after T0.
    assert "Next search contact due: <strong>Tue 3 Mar 2026, 13:00 CST</strong>" in overview

    data = contact_form()
    first = client.post(f"/episodes/{episode.id}/contacts", data=data)
    again = client.post(f"/episodes/{episode.id}/contacts", data=data)
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == f"/episodes/{episode.id}/contacts"

    [contact] = fresh().scalars(select(SearchContact)).all()
    assert (contact.episode_id, contact.purpose, contact.person, contact.relationship_to_child,
            contact.method, contact.reached) == (episode.id, "search", "Dana Reyes", "relative",
                                                 "phone", True)
    assert contact.contacted_at == utc(2026, 3, 2, 19, 40)
    assert contact.learned == "Thinks she is with a school friend on Elm St"
    assert (contact.recorded_at, contact.received_at) == (utc(2026, 3, 2, 19, 58), utc(2026, 3, 2, 20))
    assert (contact.client_uuid, contact.recorded_by_id) == (data["client_uuid"], world.cw_a.id)

    log = client.get(f"/episodes/{episode.id}/contacts").text
    assert "Logged (1)" in log and "Dana Reyes" in log and "reached" in log
    # March is covered by the first contact; April's is due by the end of April.
    overview = client.get(f"/episodes/{episode.id}").text
    assert "Next search contact due: <strong>Fri 1 May 2026, 00:00 CDT</strong>" in overview
    assert "Contact log (1)" in overview
    step = client.get(f"/episodes/{episode.id}/steps/search_contacts").text
    assert "1 contact logged for this step." in step


def test_an_attempt_and_a_follow_up_are_logged_apart(client, episode):
    client.post(f"/episodes/{episode.id}/contacts",
                data=contact_form(person="Maple House", relationship="provider", reached="attempt",
                                  learned=""))
    client.post(f"/episodes/{episode.id}/contacts",
                data=contact_form(purpose="ncic_check", person="Springfield PD records",
                                  relationship="law_enforcement", contacted_at="2026-03-02T13:45",
                                  learned="NCIC entry active"))
    rows = {c.person: c for c in fresh().scalars(select(SearchContact))}
    assert rows["Maple House"].reached is False
    assert rows["Springfield PD records"].purpose == "ncic_check"
    page = client.get(f"/episodes/{episode.id}/steps/follow_up_le_ncmec").text
    assert "1 contact logged for this step." in page


@pytest.mark.parametrize("fields, field_id, message", [
    ({"person": " "}, "person", "Name the person or office contacted."),
    ({"contacted_at": "2026-03-02T12:59"}, "contacted_at", "before the child went missing"),
    ({"contacted_at": "2026-03-02T13:59"}, "contacted_at", "later than the time on your phone"),
    ({"contacted_at": ""}, "contacted_at", "Give the date and time of the contact."),
])
def test_a_bad_contact_is_refused_next_to_its_field(client, episode, fields, field_id, message):
    response = client.post(f"/episodes/{episode.id}/contacts", data=contact_form(**fields))
    assert response.status_code == 422
    assert message in field_error(response.text, field_id)
    assert count(SearchContact) == 0
    assert count(ClientOp) == 0


def test_a_contact_id_reused_for_different_content_is_refused(client, episode):
    data = contact_form()
    client.post(f"/episodes/{episode.id}/contacts", data=data)
    response = client.post(f"/episodes/{episode.id}/contacts", data={**data, "learned": "Nothing"})
    assert response.status_code == 422
    assert "already used for different content" in response.text
    [contact] = fresh().scalars(select(SearchContact)).all()
    assert contact.learned == "Thinks she is with a school friend on Elm St"


def test_a_contact_on_an_episode_closed_by_missing_again_is_refused(episode, world):
    goes_missing_again(episode, world)
    with pytest.raises(EpisodeInvalid) as refused, db.writing() as s:
        log_contact(s, s.get(Episode, episode.id), s.merge(world.cw_a), person="Aunt",
                    relationship="relative", method="phone", contacted_at=utc(2026, 3, 2, 19, 50),
                    reached="reached", learned="", purpose="search", client_uuid=str(uuid.uuid4()))
    assert "went missing again" in refused.value.errors["person"]
    assert count(SearchContact) == 0
