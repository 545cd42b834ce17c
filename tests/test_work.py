""""My work" (issue 3 §7): every open step across a user's episodes, overdue first and then by
deadline, with plain counts; the supervisor's team version and the on-call version."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.checklists import record_item
from fieldapp.episodes import mark_located, mark_returned, open_episode
from fieldapp.models import Child, Episode, EpisodeStep, StepEntry

from helpers import fresh, utc

CHICAGO = ZoneInfo("America/Chicago")
# The missing steps whose deadline is a default the agency chose (DESIGN §4): never "overdue".
AGENCY_TARGETS = {"notify_juvenile_officer", "notify_court_representative", "notify_parents",
                  "update_living_arrangement", "notify_release", "notify_located",
                  "interview_factors", "interview_experiences", "cac_referral",
                  "supportive_services", "notify_return", "update_living_arrangement_return"}
NCMEC = {"case_number": "1498765", "method": "Phone", "reported_by": "Caseworker"}
LE = {"agency": "Springfield PD", "phone": "417 555 0100", "report_number": "26-1",
      "officer": "Sgt. Lee", "reported_by": "Caseworker"}


def record(episode_id: int, user, step_key: str, evidence: dict, outcome="done", reason=""):
    with db.writing() as s:
        record_item(s, s.get(Episode, episode_id), step_key, s.merge(user), outcome=outcome,
                    done_at=utc(2026, 3, 2, 19, 45), recorded_at=None, raw_evidence=evidence,
                    reason=reason, client_uuid=str(uuid.uuid4()))


def work_items(html: str) -> list[tuple[int, str, str, str]]:
    """(episode id, step key, child's name, deadline text) for each item of the work list."""
    found = re.findall(r'<li class="step-row">\s*<a href="/episodes/(\d+)/steps/(\w+)">.*?</a>\s*'
                       r'<div class="meta">(.*?) · .*?</div>\s*<div>(.*?)</div>\s*</li>', html, re.S)
    return [(int(e), key, unescape(name), " ".join(unescape(re.sub(r"<[^>]+>", " ", d)).split()))
            for e, key, name, d in found]


def counts_line(html: str) -> str:
    line = re.search(r'<p class="lead counts-line">(.*?)</p>', html, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", "", line).split())


def open_steps_in_db(caseworker_ids: set[int]) -> list[EpisodeStep]:
    """Open steps read straight from the tables: no evidencing entry, not closed, on a live
    episode (or one ended by a return or release) of these caseworkers' children."""
    steps = fresh().scalars(select(EpisodeStep).join(Episode).join(Child).where(
        Child.caseworker_id.in_(caseworker_ids), EpisodeStep.closed_reason.is_(None),
        (Episode.end_reason.is_(None)) | (Episode.end_reason != "missing_again"))).all()
    evidenced = {e.episode_step_id for e in fresh().scalars(select(StepEntry)).all()
                 if e.outcome in ("done", "not_applicable")}
    return [s for s in steps if s.id not in evidenced and not (
        s.step_key in ("search_contacts", "follow_up_le_ncmec") and s.episode.contacts)]


def expected_counts(steps: list[EpisodeStep], now: datetime) -> tuple[int, int]:
    today = now.astimezone(CHICAGO).date()
    overdue = [s for s in steps if s.due_at and s.due_at < now and s.step_key not in AGENCY_TARGETS]
    due_today = [s for s in steps if s not in overdue and s.due_at
                 and s.due_at.astimezone(CHICAGO).date() == today]
    return len(overdue), len(due_today)


def switch_user(login, user, client):
    """Log the same browser in as someone else."""
    assert login(user, target=client).status_code == 302


@pytest.fixture
def caseload(world, make_child, make_episode, clock):
    """Three missing children on cw.a's caseload, one on cw.a2's (same team), one on cw.b's.

    Now is Monday 2 March 2026, 14:00 CST (20:00 UTC).
    - Alice: missing since Saturday noon. Her reports (law) and the alert and first search
      contact (policy) are overdue; the notifications (agency targets) passed on Sunday.
    - Cara: missing since 13:30 today. The three reports are due at 15:30 today.
    - Dora: missing since Sunday 18:00. The reports are overdue; the 24-hour steps are due at
      18:00 today.
    """
    now = clock.now()
    world.cara = make_child(world.cw_a, "A-2", first_name="Cara", last_name="Cole")
    world.dora = make_child(world.cw_a, "A-3", first_name="Dora", last_name="Dunn")
    world.evan = make_child(world.cw_a2, "A-4", first_name="Evan", last_name="Ellis")
    world.alice_ep = make_episode(world.child_a, world.cw_a, t0=now - timedelta(hours=50))
    world.cara_ep = make_episode(world.cara, world.cw_a, t0=now - timedelta(minutes=30))
    world.dora_ep = make_episode(world.dora, world.cw_a, t0=now - timedelta(hours=20))
    world.evan_ep = make_episode(world.evan, world.cw_a2, t0=now - timedelta(hours=3))
    world.bobby_ep = make_episode(world.child_b, world.cw_b, t0=now - timedelta(hours=3))
    # Cara's police report is made; Alice's NCMEC report was tried and refused (still open).
    record(world.cara_ep.id, world.cw_a, "report_law_enforcement", LE)
    record(world.alice_ep.id, world.cw_a, "report_ncmec", {}, outcome="attempted",
           reason="Hotline down; will retry")
    return world


def test_my_work_lists_open_steps_overdue_first_then_by_deadline(client, caseload, login, clock):
    login(caseload.cw_a)
    response = client.get("/work")
    assert response.status_code == 200
    page = response.text
    assert "<h1>My work</h1>" in page
    items = work_items(page)

    db_steps = open_steps_in_db({caseload.cw_a.id})
    assert {(e, key) for e, key, _, _ in items} == {(s.episode_id, s.step_key) for s in db_steps}
    assert {name for _, _, name, _ in items} == {"Alice Avery", "Cara Cole", "Dora Dunn"}
    assert len(items) == len(db_steps) == 11 + 10 + 11  # Cara's police report is done

    # Overdue first, then by deadline, and steps with no deadline yet at the end.
    due = {(s.episode_id, s.step_key): s for s in db_steps}
    now = clock.now()
    keys = [(e, key) for e, key, _, _ in items]
    flags = [bool(due[k].due_at and due[k].due_at < now and k[1] not in AGENCY_TARGETS) for k in keys]
    assert flags == sorted(flags, reverse=True)
    for group in (True, False):
        times = [due[k].due_at for k, f in zip(keys, flags) if f == group]
        dated = [t for t in times if t is not None]
        assert dated == sorted(dated)
        assert times == dated + [None] * (len(times) - len(dated))
    # The oldest overdue deadline leads: Alice's reports, due at 14:00 CST on Saturday.
    assert items[0][2] == "Alice Avery"
    assert items[0][3] == "Due Sat 28 Feb 2026, 14:00 CST: overdue by 2 d"
    assert items[-1][1] == "inform_and_obtain"

    # "8 overdue": Alice's 3 reports, alert and first search; Dora's 3 reports.
    # "8 due today": Cara's NCMEC report and photo at 15:30; Dora's 6 day-one steps at 18:00.
    assert expected_counts(db_steps, now) == (8, 8)
    assert counts_line(page) == f"8 overdue, 8 due today, {len(db_steps)} open steps in all."


def test_the_list_wording_follows_the_basis(client, caseload, login):
    login(caseload.cw_a)
    items = {(e, key): deadline for e, key, _, deadline in work_items(client.get("/work").text)}
    alice = caseload.alice_ep.id
    assert items[(alice, "report_ncmec")] == "Due Sat 28 Feb 2026, 14:00 CST: overdue by 2 d"
    assert items[(alice, "notify_parents")] == \
        "Target Sun 1 Mar 2026, 12:00 CST: after the target by 1 d 2 h"
    assert items[(caseload.cara_ep.id, "report_ncmec")] == \
        "Due Mon 2 Mar 2026, 15:30 CST: due in 1 h 30 min"
    assert items[(caseload.dora_ep.id, "notify_parents")] == \
        "Target Mon 2 Mar 2026, 18:00 CST: target in 4 h"
    # Done and refused: Cara's police report is gone; Alice's refused NCMEC report stays.
    assert (caseload.cara_ep.id, "report_law_enforcement") not in items
    page = client.get("/work").text
    assert "Tried, could not" in page


def test_recording_a_step_takes_it_off_the_list_and_the_counts_follow(client, caseload, login):
    login(caseload.cw_a)
    before = work_items(client.get("/work").text)
    record(caseload.alice_ep.id, caseload.cw_a, "report_ncmec", NCMEC)
    page = client.get("/work").text
    after = work_items(page)
    assert len(after) == len(before) - 1
    assert (caseload.alice_ep.id, "report_ncmec") not in {(e, k) for e, k, _, _ in after}
    assert counts_line(page).startswith("7 overdue, 8 due today")


def test_the_supervisor_sees_the_team_and_only_the_team(client, caseload, login, clock):
    login(caseload.sup_a)
    page = client.get("/work").text
    assert "<h1>Team work</h1>" in page
    items = work_items(page)
    assert {name for _, _, name, _ in items} == {"Alice Avery", "Cara Cole", "Dora Dunn", "Evan Ellis"}
    assert "Bobby" not in page
    db_steps = open_steps_in_db({caseload.cw_a.id, caseload.cw_a2.id})
    assert {(e, k) for e, k, _, _ in items} == {(s.episode_id, s.step_key) for s in db_steps}
    overdue, due_today = expected_counts(db_steps, clock.now())
    # Evan adds 3 overdue reports (due an hour ago).
    assert (overdue, due_today) == (11, 8)
    assert counts_line(page).startswith(f"{overdue} overdue, {due_today} due today")

    switch_user(login, caseload.sup_b, client)
    other = work_items(client.get("/work").text)
    assert {name for _, _, name, _ in other} == {"Bobby Brook"}


def test_on_call_sees_only_the_episodes_they_broke_the_glass_for(client, caseload, login, clock):
    login(caseload.oncall)
    page = client.get("/work").text
    assert "<h1>Open episodes</h1>" in page
    assert work_items(page) == []
    assert counts_line(page).startswith("0 overdue, 0 due today")
    # Every open episode of the agency is listed, with minimal identifiers and a way in.
    agency = page.split('id="agency-heading"')[1].split("</section>")[0]
    assert "Bobby B." in agency and "Bobby Brook" not in agency
    assert f'href="/children/{caseload.child_b.id}/break-glass"' in agency

    assert client.post(f"/children/{caseload.child_b.id}/break-glass",
                       data={"reason": "Police called at 02:10 asking for the report number"}
                       ).status_code == 303
    items = work_items(client.get("/work").text)
    assert {name for _, _, name, _ in items} == {"Bobby Brook"}
    assert {e for e, _, _, _ in items} == {caseload.bobby_ep.id}
    assert len(items) == len(open_steps_in_db({caseload.cw_b.id}))

    clock.advance(hours=12, minutes=1)  # the grant lasts twelve hours
    assert work_items(client.get("/work").text) == []


def test_the_auditor_has_no_work_list(client, caseload, login):
    login(caseload.auditor)
    assert client.get("/work").status_code == 404


def test_steps_of_an_episode_ended_by_missing_again_leave_the_list(client, caseload, login):
    alice = caseload.alice_ep.id
    with db.writing() as s:
        worker = s.merge(caseload.cw_a)
        mark_located(s, s.get(Episode, alice), worker, located_at=utc(2026, 3, 2, 18),
                     located_where="in_state", located_place="Park", located_by="PD",
                     status="located_pending_return", note="Found")
        new = open_episode(s, s.get(Child, caseload.child_a.id), worker,
                           status="whereabouts_unknown", discovered_at=utc(2026, 3, 2, 19, 30),
                           discovered_by_role="caseworker", discovered_by_name="Cal",
                           how_missing="ran_away", note="Ran again")
    login(caseload.cw_a)
    items = work_items(client.get("/work").text)
    episodes = {e for e, _, name, _ in items if name == "Alice Avery"}
    assert episodes == {new.id}


def test_return_steps_stay_on_the_list_after_the_child_is_back(client, caseload, login):
    cara = caseload.cara_ep.id
    with db.writing() as s:
        worker, episode = s.merge(caseload.cw_a), s.get(Episode, cara)
        mark_located(s, episode, worker, located_at=utc(2026, 3, 2, 19, 40),
                     located_where="in_state", located_place="School", located_by="Principal",
                     status="located_pending_return", note="Found at school")
        mark_returned(s, episode, worker, returned_at=utc(2026, 3, 2, 19, 50),
                      setting="foster_family_nonrelative", provider_name="Maple House")
    login(caseload.cw_a)
    items = {(e, key): deadline for e, key, _, deadline in work_items(client.get("/work").text)}
    assert items[(cara, "medical_exam")] == "Due Tue 3 Mar 2026, 13:50 CST: due in 23 h 50 min"
    assert items[(cara, "notify_located")] == "Target Mon 2 Mar 2026, 15:40 CST: target in 1 h 40 min"
