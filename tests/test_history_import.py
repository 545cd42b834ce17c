"""History import (issue 6, part 4): the documented example, every bad line, all or nothing,
re-imports, the policy at T0, and the admin page."""
from __future__ import annotations

import io
import json
import re
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fieldapp.checklists import step_views
from fieldapp.models import (AuditEvent, CaringAdultFinding, Child, Episode, EpisodeStep,
                             EpisodeSummary, ImportKey, Intervention, Placement, RiskObservation,
                             SearchContact, StatusChange, StepEntry, User, VisitationPlan)
from fieldapp.work import work_for

from helpers import NOW, fresh, utc

ROOT = Path(__file__).resolve().parent.parent
TABLES = (Child, Placement, StatusChange, VisitationPlan, RiskObservation, CaringAdultFinding,
          Intervention, Episode, EpisodeStep, StepEntry, SearchContact, EpisodeSummary, ImportKey,
          AuditEvent)


def example_lines() -> list[str]:
    """The example file in docs/import-format.md, so that the doc stays true."""
    text = (ROOT / "docs" / "import-format.md").read_text()
    block = re.search(r"```jsonl\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def jsonl(*records: dict) -> str:
    return "\n".join(json.dumps(r) for r in records)


def counts() -> dict[str, int]:
    session = fresh()
    return {m.__name__: session.scalar(select(func.count()).select_from(m)) for m in TABLES}


@pytest.fixture
def setup(world, policies, make_user):
    make_user("cw.example", "caseworker", "Team A")
    return world


@pytest.fixture
def run(runner, tmp_path, setup):
    """``fieldapp import-history`` on the given text; returns (exit code, output)."""
    def invoke(text: str):
        path = tmp_path / "history.jsonl"
        path.write_text(text + "\n")
        result = runner.invoke(args=["import-history", str(path)])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        return result.exit_code, result.output
    return invoke


def episode(source_id: str) -> Episode:
    session = fresh()
    local = session.scalar(select(ImportKey.local_id).where(ImportKey.kind == "episode",
                                                            ImportKey.source_id == source_id))
    return session.get(Episode, local)


def test_the_documented_example_imports_every_kind(run):
    before = counts()
    code, output = run("\n".join(example_lines()))

    assert code == 0, output
    assert output.strip().splitlines()[-1] == (
        "History imported: 21 records added (1 child, 1 placement, 4 status changes, "
        "1 visitation plan, 1 risk factor, 1 caring adult finding, 1 intervention, 3 episodes, "
        "6 checklist entries, 1 search contact, 1 supportive service), 0 already imported.")
    after = counts()
    added = {name: after[name] - before[name] for name in after}
    assert added["Child"] == 1 and added["Placement"] == 1 and added["VisitationPlan"] == 1
    assert added["RiskObservation"] == added["CaringAdultFinding"] == added["Intervention"] == 1
    assert added["Episode"] == 3 and added["SearchContact"] == 1
    assert added["StepEntry"] == 7  # six checklist entries and the supportive service
    assert added["StatusChange"] == 5  # the child's initial status and four changes
    assert added["EpisodeSummary"] == 3 and added["ImportKey"] == 21
    assert added["AuditEvent"] == 1  # one event for the import, with counts only

    session = fresh()
    child = session.scalar(select(Child).where(Child.case_id == "MO-2019-00417"))
    assert (child.status, child.status_since) == ("in_placement", utc(2024, 7, 10, 22, 0))
    assert child.caseworker.username == "cw.example"
    first, again, third = episode("E-1"), episode("E-2"), episode("E-3")
    assert {e.policy_version.key for e in (first, again, third)} == {"missouri-2023"}
    assert (first.previous_episode_id, again.previous_episode_id, third.previous_episode_id) == (
        None, first.id, again.id)
    assert (again.end_reason, again.ended_at) == ("missing_again", third.discovered_at)
    closed = {s.step_key: s.closed_reason for s in again.steps if s.checklist == "return"}
    assert closed and set(closed.values()) == {"missing_again"}  # nothing was done on them
    assert first.ended_at == first.returned_at and first.end_reason == "returned_to_care"
    le = next(s for s in first.steps if s.step_key == "report_law_enforcement")
    assert le.due_at == utc(2024, 3, 6, 6, 30)  # 2 h after T0 under missouri-2023
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "history.import"))
    assert "Jordan" not in event.details and "Example" not in event.details


def test_imported_entries_are_marked_and_received_now(run, clock):
    run("\n".join(example_lines()))
    session = fresh()
    entries = session.scalars(select(StepEntry)).all()
    assert entries and all(e.imported and e.received_at == NOW for e in entries)
    le = next(e for e in entries if e.step.step_key == "report_law_enforcement"
              and e.step.episode_id == episode("E-1").id)
    assert le.recorded_at == utc(2024, 3, 6, 5, 45)  # as the file gave it
    attempted = next(e for e in entries if e.step.step_key == "notify_juvenile_officer")
    assert attempted.recorded_at == NOW  # none given: the import time
    service = next(e for e in entries if e.step.step_key == "supportive_services")
    assert json.loads(service.evidence)["service"] == "Counseling or therapy"
    assert service.outcome == "done" and service.done_at == utc(2024, 3, 20, 5, 0)
    contact = session.scalar(select(SearchContact))
    assert contact.received_at == NOW and contact.reached
    keys = session.scalars(select(ImportKey)).all()
    assert all(k.imported_at == NOW and k.imported_by_id is None for k in keys)


def test_measures_and_summaries_include_the_imported_episodes(run, runner):
    run("\n".join(example_lines()))
    result = runner.invoke(args=["compliance", "--from", "2024-01-01", "--to", "2024-12-31"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    # E-3 has no law-enforcement report; only E-1 has the NCMEC report (X-3 corrects X-2).
    assert (data["M1"]["count"], data["M1"]["denominator"]) == (1, 3)
    assert (data["M2"]["count"], data["M2"]["within_deadline"]["count"]) == (2, 2)
    assert (data["M5"]["count"], data["M5"]["denominator"]) == (2, 3)  # E-1 had a contact
    assert (data["R1"]["count"], data["R1"]["denominator"]) == (1, 2)  # E-3: no check at all
    assert (data["R2"]["count"], data["R2"]["denominator"]) == (1, 2)  # E-1 had counseling
    assert (data["P1"]["count"], data["P2"]["count"], data["P3"]["count"]) == (3, 3, 3)
    summary = fresh().get(EpisodeSummary, episode("E-1").id)
    assert summary.report_ncmec_at == utc(2024, 3, 6, 6, 10) and summary.report_ncmec_on_time
    assert summary.acf_congregate and summary.acf_no_caring_adult and summary.mo_factors == 1


def test_every_bad_line_is_reported_and_nothing_is_written(run):
    good = example_lines()
    bad = [
        good[0],
        "{not json",
        json.dumps({"type": "pet", "id": "Z"}),
        json.dumps({"type": "placement", "id": "P-9", "child": "C-100", "setting": "castle",
                    "provider_name": "X", "started_on": "2024-13-01"}),
        json.dumps({"type": "episode", "id": "E-9", "child": "C-100",
                    "discovered_at": "2024-03-05T22:30:00", "discovered_by_role": "caseworker",
                    "discovered_by_name": "A", "how_missing": "ran_away"}),
        json.dumps({"type": "intervention", "id": "I-9", "child": "NOBODY", "kind": "conversation",
                    "done_on": "2024-01-01"}),
        json.dumps({"type": "episode", "id": "E-8", "child": "C-100",
                    "discovered_at": "2024-05-05T10:00:00-05:00", "discovered_by_role": "caseworker",
                    "discovered_by_name": "A", "how_missing": "ran_away",
                    "located_at": "2024-05-04T10:00:00-05:00", "located_where": "in_state",
                    "located_by": "PD", "colour": "blue"}),
        json.dumps({"type": "risk_factor", "id": "R-9", "child": "C-100", "factor": "substance_use",
                    "present": "yes", "observed_on": "2030-01-01"}),
        good[1],
        good[1],
        json.dumps({"type": "checklist_entry", "id": "X-S", "episode": "NOPE", "step": "report_ncmec",
                    "outcome": "done", "done_at": "2024-01-01T00:00:00Z", "supersedes": "X-S"}),
    ]
    before = counts()
    code, output = run("\n".join(bad))

    assert code == 1
    assert "line 2: not valid JSON" in output
    assert "line 3: type 'pet' is not one of child, placement" in output
    assert "line 4: setting 'castle' is not one of" in output
    assert "line 4: started_on '2024-13-01' is not a date in YYYY-MM-DD form" in output
    assert "line 5: discovered_at '2024-03-05T22:30:00' is not a date and time with its UTC offset" in output
    assert "line 6: child 'NOBODY' names no child above this line, nor one imported before" in output
    assert "line 7: episode has no field 'colour'" in output
    assert "line 8: present should be true or false" in output
    assert "line 8: observed_on is in the future" in output
    assert "line 10: placement 'P-1' repeats line 9" in output
    assert "line 11: episode 'NOPE' names no episode above this line" in output
    assert "line 11: supersedes 'X-S' names no checklist entry above this line" in output
    assert "problem(s); nothing was imported" in output
    assert not any(f"line {n}:" in output for n in (1, 9))
    assert counts() == before


def test_lines_the_database_refuses_roll_everything_back(run):
    lines = example_lines()
    e1 = next(i for i, line in enumerate(lines) if '"id": "E-1"' in line)
    refused = [
        *lines[:e1 + 1],
        # Evidence the step's policy requires is missing.
        json.dumps({"type": "checklist_entry", "id": "Y-1", "episode": "E-1",
                    "step": "report_ncmec", "outcome": "done",
                    "done_at": "2024-03-06T01:00:00-06:00", "evidence": {"method": "Phone"}}),
        # The law-enforcement report is never "not applicable" (DESIGN §3).
        json.dumps({"type": "checklist_entry", "id": "Y-2", "episode": "E-1",
                    "step": "report_law_enforcement", "outcome": "not_applicable",
                    "done_at": "2024-03-06T01:00:00-06:00", "reason": "n/a"}),
        json.dumps({"type": "checklist_entry", "id": "Y-3", "episode": "E-1",
                    "step": "no_such_step", "outcome": "done",
                    "done_at": "2024-03-06T01:00:00-06:00"}),
        # An entry on the refused one is not checked (its own line was reported).
        json.dumps({"type": "checklist_entry", "id": "Y-4", "episode": "E-1",
                    "step": "report_ncmec", "outcome": "done", "supersedes": "Y-1",
                    "done_at": "2024-03-06T01:00:00-06:00",
                    "evidence": {"method": "Phone", "case_number": "1", "reported_by": "Caseworker"}}),
        # Overlaps E-1.
        json.dumps({"type": "episode", "id": "E-7", "child": "C-100",
                    "discovered_at": "2024-03-07T10:00:00-06:00", "discovered_by_role": "caseworker",
                    "discovered_by_name": "A", "how_missing": "ran_away"}),
    ]
    before = counts()
    code, output = run("\n".join(refused))

    assert code == 1, output
    n = e1 + 2
    assert f"line {n}: evidence.case_number: Required: ncmec case number." in output
    assert f"line {n}: evidence.reported_by: Required: who reported." in output
    assert f"line {n + 1}: outcome: 'Not applicable' is not allowed for this step." in output
    assert f"line {n + 2}: step 'no_such_step' is not on this episode's checklist" in output
    assert f"line {n + 3}:" not in output
    assert f"line {n + 4}: overlaps another episode of this child" in output
    assert counts() == before


def test_importing_the_same_file_again_changes_nothing(run):
    text = "\n".join(example_lines())
    assert run(text)[0] == 0
    before = counts()
    code, output = run(text)

    assert code == 0, output
    assert "History imported: 0 records added, 21 already imported." in output
    after = counts()
    assert after == {**before, "AuditEvent": before["AuditEvent"] + 1}

    # The same id with other content is refused, not applied: a re-import never edits history.
    changed = [line.replace("Oak Street Youth Home", "Elm Street Home") if '"P-1"' in line else line
               for line in example_lines()]
    code, output = run("\n".join(changed))
    assert code == 1
    assert "line 2: placement 'P-1' was imported before with other content" in output
    assert counts()["AuditEvent"] == after["AuditEvent"]


def test_a_later_file_adds_to_an_earlier_one(run):
    run("\n".join(example_lines()))
    code, output = run(jsonl({"type": "search_contact", "id": "K-2", "episode": "E-3",
                              "purpose": "search", "person": "School counselor",
                              "relationship": "school", "method": "in_person",
                              "contacted_at": "2024-07-05T10:00:00-05:00", "reached": False}))
    assert code == 0, output
    assert "History imported: 1 record added (1 search contact), 0 already imported." in output
    assert fresh().get(EpisodeSummary, episode("E-3").id).search_contacts_at == utc(2024, 7, 5, 15)


def test_a_child_already_in_fieldapp_is_matched_by_case_id(run, setup):
    code, output = run(jsonl(
        {"type": "child", "id": "OLD-1", "case_id": "A-1", "first_name": "Other", "last_name": "Name",
         "date_of_birth": "2010-05-17", "sex": "F", "county": "Greene", "status": "in_placement",
         "status_since": "2020-01-01T00:00:00Z"},
        {"type": "episode", "id": "OLD-E", "child": "OLD-1",
         "discovered_at": "2024-01-10T10:00:00-06:00", "discovered_by_role": "caseworker",
         "discovered_by_name": "A", "how_missing": "unknown", "located_at": "2024-01-11T10:00:00-06:00",
         "located_where": "in_state", "located_by": "PD", "returned_at": "2024-01-11T12:00:00-06:00",
         "end_reason": "returned_to_care"}))

    assert code == 0, output
    assert "1 record added (1 episode), 0 already imported, 1 child matched by case id" in output
    child = fresh().get(Child, setup.child_a.id)
    assert (child.first_name, child.status) == ("Alice", "in_placement")  # not changed
    assert episode("OLD-E").child_id == child.id


def test_an_episode_before_the_earliest_policy_is_refused(run):
    before = counts()
    lines = example_lines()[:2] + [json.dumps(
        {"type": "episode", "id": "E-OLD", "child": "C-100",
         "discovered_at": "2018-06-01T10:00:00-05:00", "discovered_by_role": "caseworker",
         "discovered_by_name": "A", "how_missing": "ran_away"})]
    code, output = run("\n".join(lines))

    assert code == 1
    assert ("line 3: discovered_at 2018-06-01T15:00:00+00:00 is before any installed policy (the "
            "earliest installed policy, missouri-2019, is in force from 2019-05-01)") in output
    assert counts() == before


def test_an_episode_gets_the_policy_in_force_at_its_t0(run):
    lines = example_lines()[:2] + [json.dumps(
        {"type": "episode", "id": "E-2020", "child": "C-100",
         "discovered_at": "2020-06-01T10:00:00-05:00", "discovered_by_role": "caseworker",
         "discovered_by_name": "A", "how_missing": "ran_away", "located_at": "2020-06-02T10:00:00-05:00",
         "located_where": "in_state", "located_by": "PD", "returned_at": "2020-06-02T12:00:00-05:00",
         "end_reason": "returned_to_care"})]
    assert run("\n".join(lines))[0] == 0
    imported = episode("E-2020")
    assert imported.policy_version.key == "missouri-2019"
    le = next(s for s in imported.steps if s.step_key == "report_law_enforcement")
    assert le.due_at == utc(2020, 6, 2, 15, 0)  # 24 h under the 2019 manual


# --- the admin page ---------------------------------------------------------------------------

def upload(client, text: str):
    return client.post("/admin/history", data={"file": (io.BytesIO(text.encode()), "history.jsonl")},
                       content_type="multipart/form-data")


def test_an_administrator_uploads_a_file(client, login, setup):
    login(setup.admin)
    page = client.get("/admin/history")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text

    response = upload(client, "\n".join(example_lines()))
    assert response.status_code == 200
    assert "History imported: 21 records added" in response.text
    key = fresh().scalar(select(ImportKey).where(ImportKey.kind == "episode"))
    assert key.imported_by_id == setup.admin.id


def test_a_bad_upload_answers_422_with_the_line_errors(client, login, setup):
    login(setup.admin)
    before = counts()
    response = upload(client, "\n".join([example_lines()[0], "[1, 2]",
                                         json.dumps({"type": "child", "id": "C-2"})]))
    assert response.status_code == 422
    assert "line 2: should be one JSON object" in response.text
    assert "line 3: case_id is required" in response.text
    assert "nothing was imported" in response.text
    assert counts() == before
    assert upload(client, "").status_code == 422  # an empty file is a problem too
    assert client.post("/admin/history", data={}).status_code == 422  # no file at all


def test_only_administrators_see_the_page_and_auditors_cannot_post(client, login, setup):
    login(setup.cw_a)
    assert client.get("/admin/history").status_code == 404
    assert upload(client, "\n".join(example_lines())).status_code == 404
    client.post("/logout")
    login(setup.auditor)
    assert client.get("/admin/history").status_code == 404
    assert upload(client, "\n".join(example_lines())).status_code == 403
    assert counts()["ImportKey"] == 0


def test_the_step_history_shows_imported_entries(client, login, run, setup):
    run("\n".join(example_lines()))
    login(setup.admin)
    page = client.get(f"/episodes/{episode('E-1').id}/steps/report_law_enforcement")
    assert page.status_code == 200
    assert '<span class="badge">Imported</span>' in page.text
    assert date(2024, 3, 5).strftime("%-d %b %Y") in page.text
    record = client.get(f"/episodes/{episode('E-1').id}/record")
    assert "Imported from the old system" in record.text  # the printed record (and its PDF) too


def test_release_while_missing_raises_the_notification_step(run):
    code, output = run("\n".join(example_lines()[:2] + [json.dumps(
        {"type": "episode", "id": "E-R", "child": "C-100",
         "discovered_at": "2025-01-10T10:00:00-06:00", "discovered_by_role": "caseworker",
         "discovered_by_name": "A", "how_missing": "ran_away", "end_reason": "released_from_custody",
         "ended_at": "2025-02-10T10:00:00-06:00", "court_order_date": "2025-02-10"})]))
    assert code == 0, output
    released = episode("E-R")
    assert [e.kind for e in released.info_events] == ["released_while_missing"]
    notify = next(s for s in released.steps if s.step_key == "notify_release")
    assert notify.due_at is not None
    assert not any(s.checklist == "return" for s in released.steps)  # never located


def test_status_and_episode_rules_are_those_of_the_live_forms(run, setup, make_episode):
    make_episode(setup.child_a, setup.cw_a)  # A-1 is missing now, in fieldapp
    lines = [
        json.dumps({"type": "child", "id": "A", "case_id": "A-1", "first_name": "A", "last_name": "B",
                    "date_of_birth": "2010-05-17", "sex": "F", "county": "Greene",
                    "status": "in_placement", "status_since": "2020-01-01T00:00:00Z"}),
        json.dumps({"type": "status_change", "id": "S", "child": "A",
                    "status": "unapproved_location_known", "since": "2024-01-01T00:00:00Z"}),
        json.dumps({"type": "episode", "id": "OPEN", "child": "A",
                    "discovered_at": "2024-01-10T10:00:00-06:00", "discovered_by_role": "caseworker",
                    "discovered_by_name": "A", "how_missing": "ran_away"}),
        json.dumps({"type": "episode", "id": "AGAIN", "child": "A",
                    "discovered_at": "2023-01-10T10:00:00-06:00", "discovered_by_role": "caseworker",
                    "discovered_by_name": "A", "how_missing": "ran_away", "end_reason": "missing_again",
                    "ended_at": "2023-01-12T10:00:00-06:00"}),
    ]
    before = counts()
    code, output = run("\n".join(lines))
    assert code == 1
    assert "line 2: location_address is required for unapproved_location_known" in output
    assert "line 4: missing_again needs located_at" in output
    code, output = run("\n".join(lines[:1] + lines[2:3]))  # alone, it meets the live episode
    assert code == 1 and "line 2: overlaps another episode of this child" in output
    assert "still open" in output
    assert counts() == before


def test_imported_entries_join_the_episodes_review_stages(run):
    run("\n".join(example_lines()))
    first = episode("E-1")
    stages = {s.step_key: (e.review_stage.stage if e.review_stage else None)
              for s in first.steps for e in s.entries}
    assert stages["report_law_enforcement"] == "initial_response"
    assert stages["safety_assessment"] == stages["supportive_services"] == "return"


def test_imported_ended_episodes_are_measured_but_not_put_on_my_work(run, app):
    code, output = run("\n".join(example_lines()))
    assert code == 0, output
    session = fresh()
    worker = session.scalar(select(User).where(User.username == "cw.example"))
    imported = {episode(source).id for source in ("E-1", "E-2", "E-3")}
    # Their return steps were never recorded in the old system: they stay unevidenced in the
    # measures, but nobody is asked to do them now.
    assert any(view.is_open for view in step_views(episode("E-1")))
    assert not {item.episode.id for item in work_for(session, worker).items} & imported
