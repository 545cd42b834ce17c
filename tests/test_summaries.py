"""The per-episode summary rows: written in the same transaction as each write, and rebuildable.

``Story`` builds hand-made histories through the real domain functions (the same ones the wizard
and the sync API call); tests/test_measures.py uses it too.
"""
from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import delete, select

from fieldapp import db
from fieldapp.caseloads import reassign_child
from fieldapp.checklists import EntryInvalid, record_item
from fieldapp.contacts import log_contact
from fieldapp.episodes import (mark_located, mark_returned, open_episode, record_info_event,
                               release_from_custody)
from fieldapp.models import Child, Episode, EpisodeSummary, StepEntry
from fieldapp.summaries import summary_values

from helpers import fresh, utc

DAY = "<the day it was done>"
EVIDENCE = {
    "report_law_enforcement": {"agency": "Springfield PD", "phone": "(417) 555-0100",
                               "report_number": "25-1", "officer": "Sgt. Lee",
                               "reported_by": "Caseworker"},
    "report_ncmec": {"case_number": "1498765", "method": "Phone", "reported_by": "Caseworker"},
    "notify_juvenile_officer": {"name": "J. Officer", "method": "Phone", "result": "Told"},
    "notify_court_representative": {"name": "G. Litem", "method": "Email", "result": "Told"},
    "notify_parents": {"name": "A parent", "method": "Phone", "result": "Told"},
    "safety_assessment": {"findings": "Safe"},
    "medical_exam": {"provider": "Clinic", "exam_date": DAY},
    "family_support_team": {"meeting_date": DAY, "attendees": "Team",
                            "plan_changes": "None"},
    "trafficking_screening": {"q_money_for_needs": "no", "q_controlled": "no",
                              "q_asked_to_work": "no", "q_feel_unsafe": "no"},
    "interview_factors": {"categories": ["escape"]},
    "interview_experiences": {"categories": ["other"]},
    "supportive_services": {"service": "Mentoring", "start_date": DAY},
}
ESCALATION = {"escalation_troop": "Troop D", "escalation_person": "Cpl. Ray"}


class Story:
    """A child's history told in order; the test clock follows the story so nothing is "future"."""

    def __init__(self, clock, child, worker):
        self.clock, self.child_id, self.worker = clock, child.id, worker

    def _at(self, when):
        self.clock.set(max(self.clock.now(), when + timedelta(minutes=1)))

    def missing(self, t0, status="whereabouts_unknown") -> int:
        self._at(t0)
        with db.writing() as s:
            episode = open_episode(s, s.get(Child, self.child_id), s.merge(self.worker),
                                   status=status, discovered_at=t0,
                                   discovered_by_role="caseworker", discovered_by_name="Cal",
                                   how_missing="ran_away", note="Gone")
            self.episode_id = episode.id
        return self.episode_id

    def step(self, key, done_at, outcome="done", reason="", supersedes=None, evidence=None,
             episode_id=None) -> StepEntry:
        self._at(done_at)
        extra = ESCALATION if outcome == "attempted" and key == "report_law_enforcement" else {}
        day = done_at.date().isoformat()
        template = {k: day if v == DAY else v for k, v in EVIDENCE.get(key, {}).items()}
        with db.writing() as s:
            entry, _ = record_item(
                s, s.get(Episode, episode_id or self.episode_id), key, s.merge(self.worker),
                outcome=outcome, done_at=done_at, recorded_at=None,
                raw_evidence=evidence if evidence is not None else {**template, **extra},
                reason=reason or ("Could not" if outcome != "done" else ""),
                client_uuid=str(uuid.uuid4()), supersedes_id=supersedes)
        return entry

    def contact(self, at, purpose="search", reached="attempt", episode_id=None):
        self._at(at)
        with db.writing() as s:
            log_contact(s, s.get(Episode, episode_id or self.episode_id), s.merge(self.worker),
                        person="Aunt", relationship="relative", method="phone", contacted_at=at,
                        reached=reached, learned="", purpose=purpose,
                        client_uuid=str(uuid.uuid4()))

    def located(self, t1, status="located_pending_return"):
        self._at(t1)
        with db.writing() as s:
            mark_located(s, s.get(Episode, self.episode_id), s.merge(self.worker), located_at=t1,
                         located_where="in_state", located_place="Park", located_by="PD",
                         status=status, note="Found")

    def returned(self, t2):
        self._at(t2)
        with db.writing() as s:
            mark_returned(s, s.get(Episode, self.episode_id), s.merge(self.worker), returned_at=t2,
                          setting="foster_family_nonrelative", provider_name="Maple House")

    def released(self, at):
        self._at(at)
        with db.writing() as s:
            release_from_custody(s, s.get(Episode, self.episode_id), s.merge(self.worker),
                                 released_at=at, court_order_date=at.date())

    def trafficking_identified(self, at):
        self._at(at)
        with db.writing() as s:
            record_info_event(s, s.get(Episode, self.episode_id), s.merge(self.worker),
                              "trafficking_identified", at)


def summary(episode_id: int) -> EpisodeSummary:
    return fresh().get(EpisodeSummary, episode_id)


@pytest.fixture
def story(world, policies, clock):
    clock.set(utc(2025, 1, 7))  # the story starts after the children's set-up, and moves on
    return Story(clock, world.child_a, world.cw_a)


T0 = utc(2025, 6, 10, 15)  # 10:00 in Chicago (CDT)


def test_opening_an_episode_writes_its_row_with_the_clocks_and_nothing_evidenced(story, world):
    episode_id = story.missing(T0)
    row = summary(episode_id)
    assert (row.child_id, row.team_id, row.t0, row.t0_month) == (
        world.child_a.id, world.cw_a.team_id, T0, "2025-06")
    assert row.first_month_ends == utc(2025, 7, 10, 15)
    assert (row.t1, row.t2, row.end_reason, row.missing_until, row.missing_seconds) == (
        None, None, None, None, None)
    assert row.report_law_enforcement_at is None and not row.report_law_enforcement_on_time
    assert row.months_owed_from == 2025 * 12 + 6  # July: June is the first-contact deadline's
    assert row.months_until is None


def test_an_entry_on_time_late_attempted_or_superseded_changes_the_row_at_once(story):
    episode_id = story.missing(T0)
    story.step("report_law_enforcement", T0 + timedelta(hours=2))  # exactly at the deadline
    story.step("report_ncmec", T0 + timedelta(hours=2, minutes=1))  # a minute late
    story.step("notify_juvenile_officer", T0 + timedelta(hours=3), outcome="attempted")
    row = summary(episode_id)
    assert row.report_law_enforcement_at == T0 + timedelta(hours=2)
    assert row.report_law_enforcement_on_time
    assert row.report_ncmec_at == T0 + timedelta(hours=2, minutes=1)
    assert not row.report_ncmec_on_time
    assert row.notify_juvenile_officer_at is None and row.notify_juvenile_officer_attempted

    # A correction supersedes: the late report is corrected to an attempt, which is no evidence.
    late = fresh().scalars(select(StepEntry).where(StepEntry.outcome == "done")
                           .order_by(StepEntry.id.desc())).first()
    story.step("report_ncmec", T0 + timedelta(hours=2, minutes=1), outcome="attempted",
               supersedes=late.id)
    row = summary(episode_id)
    assert row.report_ncmec_at is None and row.report_ncmec_attempted


def test_not_applicable_counts_where_the_policy_allows_it_and_only_the_latest_entry_decides(story):
    episode_id = story.missing(T0)
    story.step("notify_parents", T0 + timedelta(hours=1), outcome="not_applicable",
               reason="Parental rights terminated")
    assert summary(episode_id).notify_parents_at == T0 + timedelta(hours=1)
    story.step("notify_court_representative", T0 + timedelta(hours=1))
    story.step("notify_court_representative", T0 + timedelta(hours=2), outcome="attempted")
    row = summary(episode_id)
    # The latest non-superseded entry is an attempt: the step is not evidenced (DESIGN §6).
    assert row.notify_court_representative_at is None
    assert row.notify_court_representative_attempted


def test_a_refused_entry_leaves_the_row_as_it_was(story):
    episode_id = story.missing(T0)
    before = summary(episode_id).refreshed_at
    with pytest.raises(EntryInvalid):
        story.step("report_law_enforcement", T0 + timedelta(hours=1), evidence={})
    row = summary(episode_id)
    assert row.report_law_enforcement_at is None and row.refreshed_at == before


def test_contacts_fill_the_first_month_and_the_months_covered(story):
    episode_id = story.missing(utc(2025, 6, 30, 15))
    story.contact(utc(2025, 6, 30, 18))  # within 24 h: on time
    story.contact(utc(2025, 7, 15, 15), purpose="follow_up")  # not a search contact
    story.contact(utc(2025, 8, 2, 15))
    row = summary(episode_id)
    assert row.search_contacts_at == utc(2025, 6, 30, 18) and row.search_contacts_on_time
    assert row.months_covered == 1  # August; July had only a law-enforcement follow-up
    story.located(utc(2025, 9, 5, 15))
    row = summary(episode_id)
    assert row.months_until == 2025 * 12 + 8  # September
    assert row.missing_seconds == int((utc(2025, 9, 5, 15) - utc(2025, 6, 30, 15)).total_seconds())


def test_return_release_and_missing_again_end_the_row(story):
    first = story.missing(T0)
    story.located(T0 + timedelta(days=2))
    story.returned(T0 + timedelta(days=3))
    row = summary(first)
    assert (row.t1, row.t2, row.end_reason) == (T0 + timedelta(days=2), T0 + timedelta(days=3),
                                                "returned_to_care")
    assert row.service_window_ends == utc(2025, 12, 13, 16)  # six calendar months, same wall time

    second = story.missing(T0 + timedelta(days=20))
    story.located(T0 + timedelta(days=21))
    third = story.missing(T0 + timedelta(days=22))
    assert summary(second).end_reason == "missing_again"
    assert summary(third).acf_prior_episode
    story.released(T0 + timedelta(days=25))
    row = summary(third)
    assert row.end_reason == "released_from_custody" and row.t1 is None
    assert row.missing_until == T0 + timedelta(days=25)


def test_an_information_event_refreshes_the_row(story):
    episode_id = story.missing(T0)
    first = summary(episode_id).refreshed_at
    story.clock.advance(minutes=5)
    story.trafficking_identified(T0 + timedelta(days=1))
    assert summary(episode_id).refreshed_at > first


def test_the_team_is_the_one_responsible_at_t0_even_after_a_reassignment(story, world):
    episode_id = story.missing(T0)
    story.located(T0 + timedelta(days=1))
    story.returned(T0 + timedelta(days=2))
    with db.writing() as s:  # handed over a day after the return
        reassign_child(s, s.get(Child, world.child_a.id), s.merge(world.cw_b), s.merge(world.admin))
    story.worker = world.cw_b
    story.step("medical_exam", T0 + timedelta(days=2, hours=3))
    assert summary(episode_id).team_id == world.cw_a.team_id
    later = story.missing(T0 + timedelta(days=10))  # after the handover: the new team's
    assert summary(later).team_id == world.cw_b.team_id


def test_rebuild_writes_the_same_rows_as_the_writes_did(story, runner):
    first = story.missing(T0)
    story.step("report_law_enforcement", T0 + timedelta(hours=1))
    story.contact(T0 + timedelta(hours=3))
    story.located(T0 + timedelta(days=3))
    story.returned(T0 + timedelta(days=4))
    story.step("medical_exam", T0 + timedelta(days=4, hours=5))
    story.step("supportive_services", T0 + timedelta(days=30))
    live = {c.name: getattr(summary(first), c.name) for c in EpisodeSummary.__table__.columns}
    with db.writing() as s:
        s.execute(delete(EpisodeSummary))
    result = runner.invoke(args=["summaries", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "1 episode(s)" in result.output
    rebuilt = {c.name: getattr(summary(first), c.name) for c in EpisodeSummary.__table__.columns}
    live.pop("refreshed_at"), rebuilt.pop("refreshed_at")
    assert rebuilt == live
    assert rebuilt["supportive_services_at"] == T0 + timedelta(days=30)


def test_summary_values_reads_risk_at_t0(story, world):
    """The ACF factors from the records as they stood at T0: visitation plan, placements."""
    from fieldapp.models import Placement, VisitationPlan
    with db.writing() as s:
        s.add(VisitationPlan(child_id=world.child_a.id, frequency="weekly", with_whom="Mother",
                             adopted_on=date(2025, 2, 1), ended_on=None,
                             recorded_at=utc(2025, 2, 1, 15)))
        for n in range(5):
            s.add(Placement(child_id=world.child_a.id, setting="group_home_staff",
                            provider_name=f"Home {n}", started_on=date(2024, 1 + n, 1),
                            ended_on=date(2024, 1 + n, 20), created_at=utc(2025, 1, 1)))
    episode_id = story.missing(T0)
    row = summary(episode_id)
    assert row.visitation_plan_at_t0 and not row.acf_no_caring_adult
    assert row.acf_many_placements  # five old ones and the current one
    assert not row.acf_congregate  # the current placement is a foster family home
    assert row.acf_factors == 1
    with db.writing() as s:
        assert summary_values(s, s.get(Episode, episode_id))["acf_factors"] == 1
