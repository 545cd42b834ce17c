"""Review by stage, sign-off, addenda, the monthly contact check, and the triggers (DESIGN §7)."""
from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from fieldapp import db
from fieldapp.checklists import record_item
from fieldapp.models import ContactCheck, Episode, ReviewStage, SearchContact, StepEntry, User
from helpers import PASSWORD, fresh

POLICE = {"agency": "Springfield PD", "phone": "417-555-0100", "report_number": "R-1",
          "officer": "Officer Diaz", "reported_by": "Caseworker"}


def record(episode_id, user_id, step_key, evidence, clock, outcome="done", reason="", minutes=30,
           supersedes=None):
    with db.writing() as s:
        episode, user = s.get(Episode, episode_id), s.get(User, user_id)
        entry, _ = record_item(s, episode, step_key, user, outcome=outcome,
                               done_at=clock.now() - timedelta(minutes=minutes), recorded_at=None,
                               raw_evidence=evidence, reason=reason, client_uuid=str(uuid.uuid4()),
                               supersedes_id=supersedes)
        return entry.id


def stage_of(episode_id, kind="initial_response", addendum=False):
    rows = fresh().scalars(select(ReviewStage).where(
        ReviewStage.episode_id == episode_id, ReviewStage.stage == kind)).all()
    return next(r for r in rows if (r.addendum_of_id is not None) == addendum)


@pytest.fixture
def reviewed(world, make_episode, clock, make_user):
    """A missing child with the police report recorded by caseworker A, and a second supervisor."""
    world.sup_a2 = make_user("sup.a2", "supervisor", "Team A")
    world.episode = make_episode(world.child_a, world.cw_a)
    world.police_entry = record(world.episode.id, world.cw_a.id, "report_law_enforcement",
                                POLICE, clock)
    return world


def submit_all(client, stage_id, text="Waiting on others"):
    stage = fresh().get(ReviewStage, stage_id)
    from fieldapp.reviews import open_steps
    reasons = {f"reason_{v.spec.key}": text for v in open_steps(stage)}
    return client.post(f"/review-stages/{stage_id}/submit", data=reasons)


def test_submitting_with_open_steps_needs_a_reason_for_each(client, reviewed, login):
    login(reviewed.cw_a)
    stage = stage_of(reviewed.episode.id)
    response = client.post(f"/review-stages/{stage.id}/submit", data={})
    assert response.status_code == 422
    assert "Say why “Report to NCMEC” is still open." in response.text
    assert fresh().get(ReviewStage, stage.id).state == "in_progress"
    assert submit_all(client, stage.id).status_code == 303
    stage = fresh().get(ReviewStage, stage.id)
    assert stage.state == "submitted"
    reasons = json.loads(stage.open_step_reasons)
    assert reasons["report_ncmec"] == "Waiting on others"
    assert "report_law_enforcement" not in reasons  # recorded, so no reason is asked


def test_return_with_comments_then_fix_and_a_second_supervisor_approves(client, reviewed, login,
                                                                        clock):
    stage_id = stage_of(reviewed.episode.id).id
    login(reviewed.cw_a)
    submit_all(client, stage_id)
    # Supervisor A sends it back with a comment on the police step.
    login(reviewed.sup_a)
    assert "1 stage waiting" in client.get("/reviews").text
    response = client.post(f"/review-stages/{stage_id}/return", data={
        "comment": "", "comment_report_law_enforcement": "Add the officer's badge number"})
    assert response.status_code == 303
    assert fresh().get(ReviewStage, stage_id).state == "returned"
    # The caseworker sees the comment on the affected step, and corrects it.
    login(reviewed.cw_a)
    step = client.get(f"/episodes/{reviewed.episode.id}/steps/report_law_enforcement").text
    assert "Add the officer&#39;s badge number" in step
    record(reviewed.episode.id, reviewed.cw_a.id, "report_law_enforcement",
           {**POLICE, "officer": "Officer Diaz, badge 4411"}, clock,
           supersedes=reviewed.police_entry)
    submit_all(client, stage_id)
    # Supervisor A recorded nothing, so A could approve; here the second supervisor signs.
    login(reviewed.sup_a2)
    wrong = client.post(f"/review-stages/{stage_id}/approve", data={"password": "nope"})
    assert wrong.status_code == 422 and "That password is not right" in wrong.text
    assert fresh().get(ReviewStage, stage_id).state == "submitted"
    assert client.post(f"/review-stages/{stage_id}/approve",
                       data={"password": PASSWORD}).status_code == 303
    stage = fresh().get(ReviewStage, stage_id)
    assert (stage.state, stage.approved_by_id, stage.approved_role) == (
        "approved", reviewed.sup_a2.id, "supervisor")
    assert stage.approved_name == reviewed.sup_a2.display_name
    from fieldapp.reviews import content_hash
    assert re.fullmatch(r"[0-9a-f]{64}", stage.content_sha256)
    assert stage.content_sha256 == content_hash(stage)
    page = client.get(f"/episodes/{reviewed.episode.id}/review").text
    assert "Approved by <strong>Sup.A2</strong>" in page and stage.content_sha256 in page
    assert [e.action for e in stage.events] == ["submit", "return", "submit", "approve"]


def test_a_supervisor_who_recorded_steps_cannot_approve(client, reviewed, login, clock):
    record(reviewed.episode.id, reviewed.sup_a.id, "report_ncmec",
           {"case_number": "N-1", "method": "Phone", "reported_by": "Caseworker"}, clock)
    stage_id = stage_of(reviewed.episode.id).id
    login(reviewed.cw_a)
    submit_all(client, stage_id)
    login(reviewed.sup_a)
    page = client.get(f"/episodes/{reviewed.episode.id}/review").text
    assert "You recorded steps in this stage, so you cannot approve it" in page
    response = client.post(f"/review-stages/{stage_id}/approve", data={"password": PASSWORD})
    assert response.status_code == 422
    assert fresh().get(ReviewStage, stage_id).state == "submitted"
    login(reviewed.admin)  # an administrator may sign instead
    assert client.post(f"/review-stages/{stage_id}/approve",
                       data={"password": PASSWORD}).status_code == 303
    assert fresh().get(ReviewStage, stage_id).state == "approved"


def test_a_caseworker_cannot_approve_and_an_auditor_can_do_nothing(client, reviewed, login):
    stage_id = stage_of(reviewed.episode.id).id
    login(reviewed.cw_a)
    submit_all(client, stage_id)
    assert client.post(f"/review-stages/{stage_id}/approve",
                       data={"password": PASSWORD}).status_code == 404
    login(reviewed.auditor)
    for action in ("submit", "return", "approve"):
        assert client.post(f"/review-stages/{stage_id}/{action}",
                           data={"password": PASSWORD, "comment": "x"}).status_code == 403
    assert client.get(f"/episodes/{reviewed.episode.id}/review").status_code == 404
    assert fresh().get(ReviewStage, stage_id).state == "submitted"
    login(reviewed.sup_b)  # another team's supervisor
    assert client.post(f"/review-stages/{stage_id}/approve",
                       data={"password": PASSWORD}).status_code == 404


def approve(client, login, world, stage_id):
    login(world.cw_a)
    submit_all(client, stage_id)
    login(world.sup_a2)
    assert client.post(f"/review-stages/{stage_id}/approve",
                       data={"password": PASSWORD}).status_code == 303


def test_after_approval_a_correction_is_an_addendum_reviewed_again(client, reviewed, login, clock):
    stage_id = stage_of(reviewed.episode.id).id
    approve(client, login, reviewed, stage_id)
    signed = fresh().get(ReviewStage, stage_id).content_sha256
    correction = record(reviewed.episode.id, reviewed.cw_a.id, "report_law_enforcement",
                        {**POLICE, "report_number": "R-1b"}, clock, supersedes=reviewed.police_entry)
    addendum = stage_of(reviewed.episode.id, addendum=True)
    assert addendum.addendum_of_id == stage_id and addendum.state == "in_progress"
    assert fresh().get(StepEntry, correction).review_stage_id == addendum.id
    original = fresh().get(StepEntry, reviewed.police_entry)
    assert original.review_stage_id == stage_id  # the approved entry is untouched
    stage = fresh().get(ReviewStage, stage_id)
    from fieldapp.reviews import content_hash
    assert stage.content_sha256 == signed == content_hash(stage)
    page = client.get(f"/episodes/{reviewed.episode.id}/review").text
    assert page.index("Initial response: approved") < page.index("Initial response addendum")
    approve(client, login, reviewed, addendum.id)
    assert fresh().get(ReviewStage, addendum.id).state == "approved"


def test_contacts_are_still_logged_after_the_initial_response_is_approved(client, reviewed, login,
                                                                          clock):
    approve(client, login, reviewed, stage_of(reviewed.episode.id).id)
    login(reviewed.cw_a)
    response = client.post(f"/episodes/{reviewed.episode.id}/contacts", data={
        "purpose": "search", "person": "School counselor", "relationship": "school",
        "method": "phone", "contacted_at": "2026-03-02T13:50", "reached": "reached",
        "learned": "Seen at the library", "client_uuid": str(uuid.uuid4())})
    assert response.status_code == 303
    assert fresh().scalars(select(SearchContact)).one().person == "School counselor"


def test_the_supervisor_records_a_monthly_check_of_the_contact_log(client, reviewed, login, clock):
    login(reviewed.sup_a)
    work = client.get("/work").text
    assert "Contact logs to check this month" in work and "Alice Avery" in work
    assert client.post(f"/episodes/{reviewed.episode.id}/contact-check",
                       data={"note": "Three calls logged; school not yet"}).status_code == 303
    check = fresh().scalars(select(ContactCheck)).one()
    assert (check.month.isoformat(), check.checked_by_id) == ("2026-03-01", reviewed.sup_a.id)
    assert "Contact logs to check this month" not in client.get("/work").text
    again = client.post(f"/episodes/{reviewed.episode.id}/contact-check", data={"note": ""})
    assert again.status_code == 422 and "already recorded" in again.text
    clock.advance(days=30)  # April: due again
    assert "Contact logs to check this month" in client.get("/work").text
    login(reviewed.cw_a)
    assert client.post(f"/episodes/{reviewed.episode.id}/contact-check",
                       data={"note": "x"}).status_code == 404


def test_the_queue_is_oldest_first_and_highlights_missed_law_deadlines(client, world, login, clock,
                                                                       make_episode, make_child):
    late = make_episode(world.child_a, world.cw_a, t0=clock.now() - timedelta(hours=5))
    other_child = make_child(world.cw_a2, "A-7", first_name="Omar", last_name="Owens")
    fine = make_episode(other_child, world.cw_a2, t0=clock.now() - timedelta(minutes=20))
    login(world.cw_a)
    submit_all(client, stage_of(late.id).id)
    clock.advance(minutes=1)
    login(world.cw_a2)
    submit_all(client, stage_of(fine.id).id)
    login(world.sup_a)
    page = client.get("/reviews").text
    assert page.index("Alice Avery") < page.index("Omar Owens")
    first, second = page.split('class="step-row')[1:3]
    assert "has-missed" in first and "Report to law enforcement (overdue by 3 h 1 min)" in first
    assert "has-missed" not in second
    login(world.sup_b)
    assert "Nothing is waiting for review." in client.get("/reviews").text


def test_the_return_stage_waits_for_the_child_to_be_back(client, reviewed, login):
    from fieldapp.episodes import mark_located
    with db.writing() as s:
        mark_located(s, s.get(Episode, reviewed.episode.id), s.get(User, reviewed.cw_a.id),
                     located_at=reviewed.episode.discovered_at + timedelta(minutes=30),
                     located_where="in_state", located_place="Mall", located_by="Police",
                     status="located_pending_return", note="Found")
    login(reviewed.cw_a)
    response = submit_all(client, stage_of(reviewed.episode.id, "return").id)
    assert response.status_code == 422
    assert "once the child is back in care" in response.text


def raw(statement, **params):
    with db.engine().connect() as conn:
        with conn.begin():
            conn.execute(text(statement), params)


def test_triggers_refuse_changes_to_an_approved_stage_entries(client, reviewed, login, clock):
    entry_id = reviewed.police_entry
    raw("UPDATE step_entries SET reason = 'edited before approval' WHERE id = :id", id=entry_id)
    approve(client, login, reviewed, stage_of(reviewed.episode.id).id)
    with pytest.raises(DBAPIError, match="approved review stage"):
        raw("UPDATE step_entries SET reason = 'tampered' WHERE id = :id", id=entry_id)
    with pytest.raises(DBAPIError, match="approved review stage"):
        raw("DELETE FROM step_entries WHERE id = :id", id=entry_id)
    assert fresh().get(StepEntry, entry_id).reason == "edited before approval"


def test_the_printed_record_carries_the_signature_and_loses_its_draft_stamp(client, reviewed,
                                                                            login):
    from io import BytesIO
    from pypdf import PdfReader
    stage_id = stage_of(reviewed.episode.id).id
    login(reviewed.cw_a)
    before = client.get(f"/episodes/{reviewed.episode.id}/record").text
    assert "Initial response: in progress" in before and "Draft:" in before
    approve(client, login, reviewed, stage_id)
    stage = fresh().get(ReviewStage, stage_id)
    login(reviewed.cw_a)
    pdf = client.get(f"/episodes/{reviewed.episode.id}/record.pdf")
    assert pdf.status_code == 200
    text = "\n".join(page.extract_text() for page in PdfReader(BytesIO(pdf.data)).pages)
    flat = " ".join(text.split())
    assert "Initial response: approved" in flat
    assert "submitted by Cw.A" in flat and "approved by Sup.A2" in flat
    assert "by Sup.A2 (supervisor)" in flat
    assert stage.content_sha256[:32] in flat.replace(" ", "")
    assert "DRAFT" not in text  # the only stage is approved
