"""Deadlines (DESIGN §3 *Time*): exact durations across DST, business days, calendar months,
and the anchors T1, T2 and "step:" that the episode API sets."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.checklists import record_item
from fieldapp.deadlines import deadline_for, monthly_windows, next_business_day, next_monthly_due
from fieldapp.episodes import mark_located, mark_returned
from fieldapp.models import Episode, EpisodeStep, User
from fieldapp.policy import parse_policy

CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture(scope="module")
def policy():
    path = resources.files("fieldapp") / "policies" / "missouri-2023.toml"
    return parse_policy(path.read_text(encoding="utf-8"), "missouri-2023.toml")


def local(*args, fold: int = 0) -> datetime:
    """A wall-clock time in Chicago."""
    return datetime(*args, tzinfo=CHICAGO, fold=fold)


def utc_midnight(*args) -> datetime:
    """The UTC instant at which a Chicago calendar day starts."""
    return local(*args).astimezone(UTC)


def wall(instant: datetime) -> str:
    return instant.astimezone(CHICAGO).strftime("%Y-%m-%d %H:%M %Z")


# --- fixed durations across daylight saving -----------------------------------------------

@pytest.mark.parametrize("t0, step_key, hours, shown", [
    # 8 March 2026, clocks jump from 02:00 CST to 03:00 CDT: the wall clock shows one hour more.
    pytest.param(local(2026, 3, 8, 1, 30), "report_ncmec", 2, "2026-03-08 04:30 CDT",
                 id="spring-2h"),
    pytest.param(local(2026, 3, 8, 1, 30), "medical_exam", 24, "2026-03-09 02:30 CDT",
                 id="spring-24h"),
    pytest.param(local(2026, 3, 8, 1, 30), "search_contacts", 24, "2026-03-09 02:30 CDT",
                 id="spring-first-contact"),
    # 1 November 2026, 01:30 happens twice: first in CDT (fold=0), then an hour later in CST.
    pytest.param(local(2026, 11, 1, 1, 30, fold=0), "report_ncmec", 2, "2026-11-01 02:30 CST",
                 id="fall-first-0130-2h"),
    pytest.param(local(2026, 11, 1, 1, 30, fold=0), "medical_exam", 24, "2026-11-02 00:30 CST",
                 id="fall-first-0130-24h"),
    pytest.param(local(2026, 11, 1, 1, 30, fold=1), "report_ncmec", 2, "2026-11-01 03:30 CST",
                 id="fall-second-0130-2h"),
    pytest.param(local(2026, 11, 1, 1, 30, fold=1), "medical_exam", 24, "2026-11-02 01:30 CST",
                 id="fall-second-0130-24h"),
])
def test_fixed_deadlines_are_exact_durations_across_dst(policy, t0, step_key, hours, shown):
    for anchor in (t0, t0.astimezone(UTC)):  # however the anchor arrives, local or stored UTC
        due = deadline_for(policy.step(step_key), anchor, policy, CHICAGO)

        assert due.utcoffset() == timedelta(0)
        assert due.astimezone(UTC) - t0.astimezone(UTC) == timedelta(hours=hours)
        assert wall(due) == shown


def test_the_two_one_thirties_of_fall_back_are_an_hour_apart_and_so_are_their_deadlines(policy):
    first, second = local(2026, 11, 1, 1, 30, fold=0), local(2026, 11, 1, 1, 30, fold=1)
    step = policy.step("report_law_enforcement")

    assert (first.astimezone(UTC), second.astimezone(UTC)) == (
        datetime(2026, 11, 1, 6, 30, tzinfo=UTC), datetime(2026, 11, 1, 7, 30, tzinfo=UTC))
    assert (deadline_for(step, second, policy, CHICAGO) - deadline_for(step, first, policy, CHICAGO)
            == timedelta(hours=1))


# --- next business day ----------------------------------------------------------------------

@pytest.mark.parametrize("t2, due", [
    # Friday evening: Monday is the next business day, due by its end (Tuesday 00:00, CDT by then).
    pytest.param(local(2026, 3, 6, 19, 0), datetime(2026, 3, 10, 5, 0, tzinfo=UTC), id="friday"),
    pytest.param(local(2026, 3, 7, 10, 0), datetime(2026, 3, 10, 5, 0, tzinfo=UTC), id="saturday"),
    # Sunday 23:30 in Chicago is Monday in UTC; the agency's Sunday decides.
    pytest.param(local(2026, 3, 1, 23, 30), datetime(2026, 3, 3, 6, 0, tzinfo=UTC),
                 id="sunday-late"),
    pytest.param(local(2026, 3, 2, 9, 0), datetime(2026, 3, 4, 6, 0, tzinfo=UTC), id="monday"),
])
def test_placement_visit_is_due_at_the_end_of_the_next_business_day(policy, t2, due):
    step = policy.step("placement_visit")
    assert step.deadline.rule == "next_business_day"

    assert deadline_for(step, t2, policy, CHICAGO) == due
    assert deadline_for(step, t2.astimezone(UTC), policy, CHICAGO) == due
    assert due.astimezone(CHICAGO).time() == time(0)  # midnight in Chicago, whatever the offset


def test_a_holiday_in_the_policy_is_not_a_business_day(policy):
    step = policy.step("placement_visit")
    friday = local(2026, 5, 22, 18, 0)  # before Memorial Day, Monday 25 May
    with_holiday = replace(policy, holidays=(date(2026, 5, 25),))

    assert deadline_for(step, friday, policy, CHICAGO) == utc_midnight(2026, 5, 26)
    assert deadline_for(step, friday, with_holiday, CHICAGO) == utc_midnight(2026, 5, 27)


def test_the_end_of_a_business_day_is_the_next_local_midnight_even_on_a_dst_day(policy):
    """For an agency that works every day, Sunday 8 March 2026 is 23 hours long."""
    every_day = replace(policy, business_days=tuple(range(7)))
    due = deadline_for(policy.step("placement_visit"), local(2026, 3, 7, 12, 0), every_day, CHICAGO)
    assert due == datetime(2026, 3, 9, 5, 0, tzinfo=UTC)
    assert wall(due) == "2026-03-09 00:00 CDT"


@pytest.mark.parametrize("after, holidays, expected", [
    (date(2026, 3, 6), (), date(2026, 3, 9)),  # Friday -> Monday
    (date(2026, 3, 7), (), date(2026, 3, 9)),  # Saturday -> Monday
    (date(2026, 3, 8), (), date(2026, 3, 9)),  # Sunday -> Monday
    (date(2026, 3, 9), (), date(2026, 3, 10)),  # Monday -> Tuesday
    (date(2026, 5, 22), (date(2026, 5, 25),), date(2026, 5, 26)),
    (date(2026, 11, 25), (date(2026, 11, 26), date(2026, 11, 27)), date(2026, 11, 30)),
    (date(2026, 12, 31), (date(2027, 1, 1),), date(2027, 1, 4)),
])
def test_next_business_day(policy, after, holidays, expected):
    assert next_business_day(after, replace(policy, holidays=holidays)) == expected


# --- calendar months --------------------------------------------------------------------------

def test_a_child_missing_late_on_31_january_owes_february_not_january(policy):
    t0 = local(2026, 1, 31, 23, 0)
    first_due = deadline_for(policy.step("search_contacts"), t0, policy, CHICAGO)
    now = local(2026, 2, 10, 12, 0)
    assert first_due == local(2026, 2, 1, 23, 0).astimezone(UTC)

    windows = monthly_windows(t0, now, [], CHICAGO)
    assert [(w.first_day, w.starts, w.ends, w.covered) for w in windows] == [
        (date(2026, 2, 1), utc_midnight(2026, 2, 1), utc_midnight(2026, 3, 1), False)]
    assert next_monthly_due(t0, first_due, now, [], CHICAGO) == first_due

    contact = local(2026, 2, 1, 9, 0)
    assert monthly_windows(t0, now, [contact], CHICAGO)[0].covered
    assert next_monthly_due(t0, first_due, now, [contact], CHICAGO) == utc_midnight(2026, 4, 1)

    in_t0s_month = local(2026, 1, 31, 23, 40)  # meets the first contact, but February is still owed
    assert next_monthly_due(t0, first_due, now, [in_t0s_month], CHICAGO) == utc_midnight(2026, 3, 1)


def test_months_run_across_the_year_end(policy):
    t0 = local(2026, 12, 15, 10, 0)
    first_due = deadline_for(policy.step("search_contacts"), t0, policy, CHICAGO)
    contacts = [local(2026, 12, 16, 14, 0)]

    def due(now):
        return next_monthly_due(t0, first_due, now, contacts, CHICAGO)

    assert monthly_windows(t0, local(2026, 12, 20, 12, 0), contacts, CHICAGO) == []
    assert due(local(2026, 12, 20, 12, 0)) == utc_midnight(2027, 2, 1)  # the end of January
    assert due(local(2027, 1, 31, 12, 0)) == utc_midnight(2027, 2, 1)
    assert due(local(2027, 2, 5, 12, 0)) == utc_midnight(2027, 2, 1)  # overdue since then

    windows = monthly_windows(t0, local(2027, 2, 5, 12, 0), contacts, CHICAGO)
    assert [(w.first_day, w.covered) for w in windows] == [(date(2027, 1, 1), False),
                                                          (date(2027, 2, 1), False)]

    contacts.append(local(2027, 1, 20, 9, 0))
    assert due(local(2027, 2, 5, 12, 0)) == utc_midnight(2027, 3, 1)


def test_a_contact_at_the_month_boundary_belongs_to_the_new_month():
    t0 = local(2026, 12, 15, 10, 0)
    now = local(2027, 2, 5, 12, 0)
    boundary = utc_midnight(2027, 2, 1)

    on_it = monthly_windows(t0, now, [boundary], CHICAGO)
    assert [(w.first_day, w.covered) for w in on_it] == [(date(2027, 1, 1), False),
                                                        (date(2027, 2, 1), True)]
    just_before = monthly_windows(t0, now, [boundary - timedelta(microseconds=1)], CHICAGO)
    assert [(w.first_day, w.covered) for w in just_before] == [(date(2027, 1, 1), True),
                                                              (date(2027, 2, 1), False)]


def test_month_windows_follow_the_agencys_calendar_through_dst():
    windows = monthly_windows(local(2026, 2, 10, 8, 0), local(2026, 3, 20, 8, 0), [], CHICAGO)
    march = windows[-1]
    assert march.first_day == date(2026, 3, 1)
    assert (march.starts, march.ends) == (datetime(2026, 3, 1, 6, tzinfo=UTC),
                                          datetime(2026, 4, 1, 5, tzinfo=UTC))
    assert march.ends - march.starts == timedelta(days=31) - timedelta(hours=1)


# --- anchors through the episode API --------------------------------------------------------

def step_rows(episode_id: int) -> dict[str, EpisodeStep]:
    session = db.session()
    session.expire_all()
    rows = session.scalars(select(EpisodeStep).where(EpisodeStep.episode_id == episode_id))
    return {row.step_key: row for row in rows}


T2_STEPS = {"medical_exam": 24, "trafficking_screening": 24, "interview_factors": 72,
            "interview_experiences": 72, "family_support_team": 72, "cac_referral": 72,
            "supportive_services": 720, "notify_return": 24, "update_living_arrangement_return": 24}


def test_return_deadlines_run_from_t2_and_the_safety_check_from_t1(app, clock, make_user,
                                                                    make_child, make_episode):
    worker = make_user("cw.sam")
    t0 = datetime(2026, 2, 20, 18, 0, tzinfo=UTC)
    t1 = datetime(2026, 2, 24, 15, 0, tzinfo=UTC)  # found out of state
    t2 = t1 + timedelta(days=3)  # back in care on Friday 27 February, 09:00 in Chicago
    clock.set(t0 + timedelta(minutes=20))
    episode = make_episode(make_child(worker), worker, t0=t0)

    clock.set(t1 + timedelta(minutes=30))
    with db.writing() as s:
        mark_located(s, s.get(Episode, episode.id), s.get(User, worker.id), located_at=t1,
                     located_where="out_of_state", located_place="Bus station, Tulsa",
                     located_by="Tulsa police", status="located_pending_return",
                     note="Held by Tulsa police until transport")
    steps = step_rows(episode.id)
    assert steps["safety_assessment"].due_at == t1 + timedelta(hours=2)
    assert steps["notify_located"].due_at == t1 + timedelta(hours=2)
    for key in [*T2_STEPS, "placement_visit"]:
        assert (steps[key].raised_at, steps[key].due_at) == (t1 + timedelta(minutes=30), None), key

    clock.set(t2 + timedelta(minutes=45))
    with db.writing() as s:
        mark_returned(s, s.get(Episode, episode.id), s.get(User, worker.id), returned_at=t2,
                      setting="group_home_staff", provider_name="Oak House",
                      note="Back at Oak House")
    steps = step_rows(episode.id)
    assert steps["medical_exam"].due_at == t2 + timedelta(hours=24)
    assert steps["family_support_team"].due_at == t2 + timedelta(hours=72)
    for key, hours in T2_STEPS.items():
        assert steps[key].due_at == t2 + timedelta(hours=hours), key
    assert steps["placement_visit"].due_at == utc_midnight(2026, 3, 3)  # Monday's end
    assert steps["safety_assessment"].due_at == t1 + timedelta(hours=2)
    assert steps["report_ncmec"].due_at == t0 + timedelta(hours=2)


def test_inform_and_obtain_runs_from_when_the_report_was_done(app, clock, make_user, make_child,
                                                               make_episode):
    worker = make_user("cw.sam")
    episode = make_episode(make_child(worker), worker)
    t0 = episode.discovered_at
    assert step_rows(episode.id)["inform_and_obtain"].due_at is None

    def record(outcome, done_at, evidence, reason=""):
        with db.writing() as s:
            record_item(s, s.get(Episode, episode.id), "report_law_enforcement",
                        s.get(User, worker.id), outcome=outcome, done_at=done_at,
                        recorded_at=None, raw_evidence=evidence, reason=reason,
                        client_uuid=str(uuid4()))

    record("attempted", t0 + timedelta(minutes=20),
           {"escalation_troop": "Troop D", "escalation_person": "Sgt. Ramos"},
           reason="The desk officer would not take a report for a 16-year-old")
    assert step_rows(episode.id)["inform_and_obtain"].due_at is None  # an attempt is no report

    clock.advance(hours=6)  # recorded later in the day; the deadline runs from when it was done
    done_at = t0 + timedelta(minutes=50)
    record("done", done_at, {"agency": "Springfield Police Department", "phone": "417-555-0100",
                             "report_number": "SPD-26-01234", "officer": "Ofc. Lane",
                             "reported_by": "Caseworker"})

    steps = step_rows(episode.id)
    assert steps["inform_and_obtain"].due_at == done_at + timedelta(hours=24)
    assert steps["report_law_enforcement"].due_at == t0 + timedelta(hours=2)
