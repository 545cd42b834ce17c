"""The compliance measures on small hand-built histories, with the edge cases of issue 6.

Every figure is asserted on SQLite and on PostgreSQL (the ``db_url`` fixture runs each test on
both), so the two databases are shown to agree by construction.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from fieldapp import db
from fieldapp.compliance.query import Population
from fieldapp.compliance.specs import MEASURES
from fieldapp.compliance.summary import compliance_summary, drill_down
from fieldapp.episodes import mark_located
from fieldapp.models import AuditEvent, Episode, VisitationPlan
from fieldapp.status import UnapprovedLocation

from helpers import fresh, utc
from test_summaries import Story

JUNE = Population(date(2025, 6, 1), date(2025, 6, 30))
T0 = utc(2025, 6, 10, 15)  # 10:00 in Chicago


@pytest.fixture
def cast(world, policies, clock, make_child):
    """A story per child: ``cast(n)`` gives n fresh children of Team A's caseworker."""
    clock.set(utc(2025, 1, 7))

    def stories(n, worker=None):
        worker = worker or world.cw_a
        return [Story(clock, make_child(worker), worker) for _ in range(n)]
    return stories


def measures(pop=JUNE, at=None, clock=None):
    if clock is not None and at is not None:
        clock.set(at)
    return compliance_summary(fresh(), pop)


def ids(pop, key, variant="any", step=None):
    return drill_down(fresh(), pop, key, variant, step)


def test_t0_just_inside_and_just_outside_the_period(cast):
    inside_first, outside_before, inside_last, outside_after = cast(4)
    a = inside_first.missing(utc(2025, 6, 1, 5))  # 00:00 on 1 June, Chicago (CDT)
    outside_before.missing(utc(2025, 6, 1, 4, 59))  # 23:59 on 31 May
    b = inside_last.missing(utc(2025, 7, 1, 4, 59))  # 23:59 on 30 June
    outside_after.missing(utc(2025, 7, 1, 5))  # 00:00 on 1 July
    result = measures()
    assert (result["M1"]["count"], result["M1"]["denominator"]) == (2, 2)
    assert ids(JUNE, "M1") == [a, b]
    assert set(result["M1"]["breakdowns"]["by_month"]) == {"2025-06"}


def test_a_report_exactly_at_the_deadline_is_within_it_and_a_minute_late_is_not(cast):
    on_time, late = cast(2)
    a = on_time.missing(T0)
    b = late.missing(T0)
    on_time.step("report_law_enforcement", T0 + timedelta(hours=2))
    late.step("report_law_enforcement", T0 + timedelta(hours=2, minutes=1))
    m1 = measures()["M1"]
    assert (m1["count"], m1["denominator"], m1["percent"]) == (0, 2, 0.0)  # both evidenced
    assert m1["within_deadline"] == {"count": 1, "denominator": 2, "percent": 50.0}
    assert ids(JUNE, "M1", "within") == [b]
    assert ids(JUNE, "M1") == [] and a != b


def test_attempted_is_shown_apart_and_not_applicable_is_evidence_where_allowed(cast):
    tried, notified, partly = cast(3)
    a = tried.missing(T0)
    tried.step("report_law_enforcement", T0 + timedelta(hours=1), outcome="attempted")
    tried.step("notify_juvenile_officer", T0 + timedelta(hours=1), outcome="attempted")
    notified.missing(T0)
    notified.step("notify_juvenile_officer", T0 + timedelta(hours=1))
    notified.step("notify_court_representative", T0 + timedelta(hours=1))
    notified.step("notify_parents", T0 + timedelta(hours=1), outcome="not_applicable",
                  reason="Parental rights terminated")
    c = partly.missing(T0)
    partly.step("notify_parents", T0 + timedelta(hours=30))  # after the 24 h target
    result = measures()
    m1 = result["M1"]
    assert (m1["count"], m1["attempted"]) == (3, 1)
    assert ids(JUNE, "M1", "attempted") == [a]
    m4a, m4b = result["M4a"], result["M4b"]
    assert (m4a["count"], m4a["attempted"], m4a["denominator"]) == (1, 1, 3)
    assert ids(JUNE, "M4a") == [a]
    assert (m4b["count"], m4b["within_deadline"]["count"]) == (2, 2)
    assert ids(JUNE, "M4b") == [a, c]
    parents = m4a["breakdowns"]["components"]["notify_parents"]
    assert (parents["count"], parents["within_deadline"]["count"]) == (1, 2)
    assert m4a["breakdowns"]["components"]["notify_juvenile_officer"]["attempted"] == 1


def test_a_superseded_entry_no_longer_counts(cast):
    (story,) = cast(1)
    a = story.missing(T0)
    entry = story.step("report_ncmec", T0 + timedelta(hours=1))
    assert measures()["M2"]["count"] == 0
    story.step("report_ncmec", T0 + timedelta(hours=1), outcome="attempted", supersedes=entry.id)
    m2, m3 = measures()["M2"], measures()["M3"]
    assert (m2["count"], m2["attempted"]) == (1, 1)
    assert m3["count"] == 1 and ids(JUNE, "M3") == [a]


def test_a_child_released_from_custody_is_not_in_r1_or_r2(cast):
    returned, released = cast(2)
    a = returned.missing(T0)
    returned.located(T0 + timedelta(days=1))
    returned.returned(T0 + timedelta(days=2))
    released.missing(T0)
    released.released(T0 + timedelta(days=3))
    result = measures()
    assert (result["R1"]["count"], result["R1"]["denominator"]) == (1, 1)
    assert (result["R2"]["count"], result["R2"]["denominator"]) == (1, 1)
    assert ids(JUNE, "R1") == ids(JUNE, "R2") == [a]
    assert result["M1"]["denominator"] == 2


def test_r1_needs_every_check_missing_and_r2_counts_services_in_the_six_months_after_return(cast):
    checked, one_check, late_service = cast(3)
    for story in (checked, one_check, late_service):
        story.missing(T0)
        story.located(T0 + timedelta(days=1))
        story.returned(T0 + timedelta(days=2))
    t2 = T0 + timedelta(days=2)
    for key in ("safety_assessment", "medical_exam", "family_support_team",
                "trafficking_screening", "interview_factors", "interview_experiences"):
        checked.step(key, t2 + timedelta(hours=1))
    one_check.step("medical_exam", t2 + timedelta(hours=30))  # after its 24 h deadline
    checked.step("supportive_services", t2 + timedelta(days=10))  # within 30 days: on time
    one_check.step("supportive_services", t2 + timedelta(days=60))  # in 6 months, after target
    late_service.step("supportive_services", utc(2025, 12, 12, 16))  # T2 + 6 months: outside
    result = measures()
    r1 = result["R1"]
    assert (r1["count"], r1["denominator"]) == (1, 3)  # only late_service had no check at all
    assert r1["within_deadline"]["count"] == 2  # one_check's exam was late
    medical = r1["breakdowns"]["components"]["medical_exam"]
    assert (medical["count"], medical["within_deadline"]["count"]) == (1, 2)
    r2 = result["R2"]
    assert (r2["count"], r2["within_deadline"]["count"], r2["denominator"]) == (1, 2, 3)
    assert ids(JUNE, "R2") == [late_service.episode_id]


def test_a_contact_exactly_at_t0_plus_one_month_is_outside_the_first_month(cast):
    edge, just_in, none = cast(3)
    a = edge.missing(T0)
    edge.contact(utc(2025, 7, 10, 15))  # T0 + 1 calendar month exactly
    just_in.missing(T0)
    just_in.contact(utc(2025, 7, 10, 14, 59), reached="reached")
    c = none.missing(T0)
    m5 = measures()["M5"]
    assert (m5["count"], m5["denominator"]) == (2, 3)
    assert ids(JUNE, "M5") == [a, c]
    assert m5["within_deadline"]["count"] == 3  # nobody made contact within 24 h


def test_m6_counts_calendar_months_missing_without_a_search_contact(cast, clock):
    found, still_missing = cast(2)
    found.missing(T0)
    found.contact(utc(2025, 7, 15, 15))
    found.located(utc(2025, 9, 5, 15))  # owed: July, August, September; July covered
    still_missing.missing(utc(2025, 6, 20, 15))
    still_missing.contact(utc(2025, 8, 1, 15))
    m6 = measures(at=utc(2025, 10, 15, 15), clock=clock)["M6"]
    # still_missing owes July to October (4), August covered: 3 + 2 uncovered of 3 + 4
    assert (m6["count"], m6["denominator"], m6["unit"]) == (5, 7, "months")
    assert m6["breakdowns"]["by_month"]["2025-06"]["count"] == 5


def test_a_missing_again_episode_ends_without_being_returned(cast):
    (story,) = cast(1)
    first = story.missing(T0)
    story.step("report_law_enforcement", T0 + timedelta(hours=1))
    story.located(T0 + timedelta(days=1))
    second = story.missing(T0 + timedelta(days=2))
    result = measures()
    assert (result["M1"]["count"], result["M1"]["denominator"]) == (1, 2)
    assert ids(JUNE, "M1") == [second]
    assert result["R1"]["denominator"] == 0 and result["R1"]["percent"] is None
    assert fresh().get(Episode, first).end_reason == "missing_again"


def test_the_cohort_on_a_date_holds_the_episodes_missing_at_its_close(cast):
    found_on_the_day, still_missing, found_before, later = cast(4)
    a = found_on_the_day.missing(utc(2025, 5, 1, 15))
    found_on_the_day.located(utc(2025, 6, 10, 15))
    b = still_missing.missing(utc(2025, 5, 20, 15))
    found_before.missing(utc(2025, 5, 1, 15))
    found_before.located(utc(2025, 5, 20, 15))
    later.missing(utc(2025, 6, 11, 5))  # 00:00 on 11 June in Chicago
    on_9_june = Population(date(2025, 6, 1), date(2025, 6, 30), cohort_date=date(2025, 6, 9))
    on_10_june = Population(date(2025, 6, 1), date(2025, 6, 30), cohort_date=date(2025, 6, 10))
    assert ids(on_9_june, "M1") == [a, b]
    assert ids(on_10_june, "M1") == [b]  # found during the day: not missing at its close
    assert measures(on_10_june)["M1"]["denominator"] == 1


def test_per_child_counts_a_child_once_if_any_episode_matches(cast):
    twice, once = cast(2)
    twice.missing(T0)
    twice.located(T0 + timedelta(days=1))
    twice.returned(T0 + timedelta(days=1, hours=2))
    twice.missing(T0 + timedelta(days=5))
    once.missing(T0)
    once.step("report_law_enforcement", T0 + timedelta(hours=1))
    per_episode = measures()["M1"]
    per_child = measures(Population(date(2025, 6, 1), date(2025, 6, 30), per_child=True))["M1"]
    assert (per_episode["count"], per_episode["denominator"]) == (2, 3)
    assert (per_child["count"], per_child["denominator"], per_child["unit"]) == (1, 2, "children")
    assert per_child["breakdowns"]["by_month"]["2025-06"] == {
        "count": 1, "denominator": 2, "percent": 50.0, "attempted": 0,
        "within_deadline": {"count": 1, "denominator": 2, "percent": 50.0}}


def test_min_days_leaves_out_short_absences(cast, clock):
    short, long, open_long, open_short = cast(4)
    short.missing(T0)
    short.located(T0 + timedelta(days=1, hours=23))
    b = long.missing(T0)
    long.located(T0 + timedelta(days=2))  # exactly two days
    c = open_long.missing(T0)
    open_short.missing(utc(2025, 6, 29, 15))
    clock.set(utc(2025, 6, 30, 15))  # open_short has been missing one day
    two_days = Population(date(2025, 6, 1), date(2025, 6, 30), min_days=2)
    assert ids(two_days, "M1") == [b, c]
    assert measures(two_days)["M1"]["denominator"] == 3 - 1


def test_team_filter_and_risk_measures(cast, world):
    (a_story,) = cast(1)
    (b_story,) = cast(1, worker=world.cw_b)
    with db.writing() as s:
        s.add(VisitationPlan(child_id=a_story.child_id, frequency="weekly", with_whom="Mother",
                             adopted_on=date(2025, 2, 1), recorded_at=utc(2025, 2, 1, 15)))
    a = a_story.missing(T0)
    b = b_story.missing(T0)
    result = measures()
    assert (result["P3"]["count"], result["P3"]["denominator"]) == (1, 2)
    assert ids(JUNE, "P3") == [b]
    assert result["P1"]["count"] == 1  # b lacks caring adults: no visitation plan
    assert (result["P2"]["count"], result["P2"]["denominator"]) == (0, 1)
    team_a = Population(date(2025, 6, 1), date(2025, 6, 30), team_id=world.cw_a.team_id)
    assert ids(team_a, "M1") == [a]
    assert measures(team_a)["P3"]["count"] == 0


def test_s1_counts_precise_statuses_on_the_date_and_flags_the_unverified(cast, clock):
    missing, at_friend, fresh_address = cast(3)
    missing.missing(utc(2025, 5, 1, 15), status="in_contact_location_unknown")
    at_friend.missing(utc(2025, 4, 1, 15))
    fresh_address.missing(utc(2025, 6, 1, 15))
    for story, at in ((at_friend, utc(2025, 4, 5, 15)), (fresh_address, utc(2025, 6, 20, 15))):
        story._at(at)
        with db.writing() as s:
            mark_located(s, s.get(Episode, story.episode_id), s.merge(story.worker),
                         located_at=at, located_where="in_state", located_place="Friend's",
                         located_by="Caseworker", status="unapproved_location_known",
                         location=UnapprovedLocation("1 Elm St", "Ms Friend", "Visited"),
                         note="Staying with a friend")
    s1 = measures()["S1"]
    assert (s1["count"], s1["denominator"], s1["percent"]) == (1, 3, 33.3)
    assert s1["breakdowns"]["by_status"] == {"in_contact_location_unknown": 1,
                                              "whereabouts_unknown": 0,
                                              "unapproved_location_known": 2}
    assert s1["breakdowns"]["unverified"] == 1  # at the friend's since April
    assert ids(JUNE, "S1") == [missing.child_id]
    on_may = Population(date(2025, 6, 1), date(2025, 6, 30), cohort_date=date(2025, 5, 15))
    assert measures(on_may)["S1"]["breakdowns"]["by_status"]["unapproved_location_known"] == 1


def test_the_cli_gives_one_key_per_measure_in_json_and_csv(cast, runner, world):
    (story,) = cast(1)
    story.missing(T0)
    story.step("report_law_enforcement", T0 + timedelta(hours=1))
    args = ["compliance", "--from", "2025-06-01", "--to", "2025-06-30"]
    result = runner.invoke(args=args + ["--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data) == [m.key for m in MEASURES]
    assert {"M1", "M2", "M3", "M4a", "M4b", "M5", "M6", "R1", "R2", "P1", "P1-MO", "P2", "P3",
            "S1"} == set(data)
    for figures in data.values():
        assert {"count", "denominator", "percent", "label", "within_deadline",
                "breakdowns"} <= set(figures)
    assert (data["M1"]["count"], data["M2"]["count"], data["M2"]["denominator"]) == (0, 1, 1)
    assert data == json.loads(json.dumps(measures()))  # the CLI is the same function

    rows = list(csv.DictReader(io.StringIO(runner.invoke(args=args + ["--format", "csv"]).output)))
    m4a = [r for r in rows if r["measure"] == "M4a"]
    assert [r["part"] for r in m4a] == ["", "notify_juvenile_officer",
                                        "notify_court_representative", "notify_parents"]
    team_b = runner.invoke(args=args + ["--team", "Team B"])
    assert json.loads(team_b.output)["M2"]["denominator"] == 0
    assert runner.invoke(args=args + ["--team", "Nobody"]).exit_code == 2
    drilled = runner.invoke(args=args + ["--drill-down", "M2"])
    assert drilled.output.split() == [str(story.episode_id)]


# --- the dashboard ------------------------------------------------------------------------------

def dashboard_history(cast, world):
    a_story, b_story = cast(1)[0], cast(1, worker=world.cw_b)[0]
    a_story.missing(T0)
    a_story.step("report_law_enforcement", T0 + timedelta(hours=3))  # late
    b_story.missing(T0)
    return a_story, b_story


def test_the_dashboard_shows_the_clis_numbers(cast, world, client, login, runner):
    dashboard_history(cast, world)
    args = "from=2025-06-01&to=2025-06-30".replace("from", "start").replace("to=", "end=")
    login(world.admin)
    page = client.get(f"/compliance?{args}")
    assert page.status_code == 200
    cli = json.loads(runner.invoke(args=["compliance", "--from", "2025-06-01", "--to",
                                         "2025-06-30"]).output)
    for key, figures in cli.items():
        assert f"<strong>{figures['count']}</strong> of {figures['denominator']} {figures['unit']}" \
            in page.text, key
    assert "M1 by month of T0" in page.text and "2025-06" in page.text


def test_a_supervisor_reads_only_their_team_and_caseworkers_not_at_all(cast, world, client, login):
    dashboard_history(cast, world)
    login(world.sup_a)
    page = client.get("/compliance?start=2025-06-01&end=2025-06-30&team=").text
    assert "<strong>0</strong> of 1 episodes" in page  # M1: team A's one episode was reported
    assert 'name="team"' not in page
    login(world.cw_a)
    assert client.get("/compliance").status_code == 404


def test_the_dashboard_refuses_bad_input_next_to_the_field(world, client, login, policies):
    login(world.admin)
    response = client.get("/compliance?start=2025-13-01&end=2025-06-30&min_days=two")
    assert response.status_code == 422
    from helpers import field_error
    assert field_error(response.text, "start") == "Give the first day as YYYY-MM-DD."
    assert field_error(response.text, "min_days").startswith("Give a whole number of days")


def test_each_chart_is_an_svg_without_script_with_its_text_alternative(cast, world, client, login):
    dashboard_history(cast, world)
    login(world.auditor)
    args = "start=2025-06-01&end=2025-06-30"
    svg = client.get(f"/compliance/charts/M1.svg?{args}")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert svg.text.lstrip().startswith(("<?xml", "<svg")) and "<script" not in svg.text
    assert "script-src" not in svg.headers["Content-Security-Policy"]
    page = client.get(f"/compliance?{args}").text
    assert 'alt="M1, No law-enforcement report, by month of T0: 2025-06: 50.0% (1 of 2)."' in page


def test_auditors_drill_down_de_identified_and_supervisors_by_name(cast, world, client, login):
    a_story, b_story = dashboard_history(cast, world)
    args = "start=2025-06-01&end=2025-06-30"
    login(world.auditor)
    page = client.get(f"/compliance/M1/episodes?{args}&variant=within").text
    assert "2 episodes" in page and "E-" in page
    for secret in ("Test", a_story.child_id and "CASE-", "/episodes/"):
        assert secret not in page
    login(world.sup_b)
    page = client.get(f"/compliance/M1/episodes?{args}").text
    assert "1 episode." in page and "CASE-" in page and f"/episodes/{b_story.episode_id}" in page
    assert client.get(f"/compliance/M9/episodes?{args}").status_code == 404


def test_one_measure_alone_gives_the_same_figures(cast, world):
    dashboard_history(cast, world)
    whole = compliance_summary(fresh(), JUNE)
    for key in ("M1", "M4a", "M6", "S1"):
        assert compliance_summary(fresh(), JUNE, only=key) == {key: whole[key]}


# --- the PDF -----------------------------------------------------------------------------------

PERIOD = "start=2025-06-01&end=2025-06-30"


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_the_pdf_carries_the_dashboards_figures_and_a_chart_per_measure(cast, world, client,
                                                                         login):
    dashboard_history(cast, world)
    login(world.admin)
    page = client.get(f"/compliance?{PERIOD}").text
    assert f'href="/compliance.pdf?{PERIOD}"' in page.replace("&amp;", "&")
    response = client.get(f"/compliance.pdf?{PERIOD}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = pdf_text(response.data)
    assert "Episodes with T0 from 2025-06-01 to 2025-06-30, the whole agency." in text
    assert "M1. No law-enforcement report" in text and "M3. " in text and "S1. " in text
    # The charts are drawn into the PDF as vector art: their titles are text on the page.
    assert "M1: No law-enforcement report" in text
    assert "M1 by month of T0" in text
    assert "/compliance/" not in text  # no drill-down links in print
    event = fresh().scalars(select(AuditEvent).where(AuditEvent.action == "compliance.pdf")).one()
    assert event.actor_id == world.admin.id and '"start": "2025-06-01"' in event.details


def test_the_pdf_is_for_the_dashboards_readers_only(cast, world, client, login):
    dashboard_history(cast, world)
    login(world.auditor)
    assert client.get(f"/compliance.pdf?{PERIOD}").status_code == 200
    login(world.cw_a)
    assert client.get(f"/compliance.pdf?{PERIOD}").status_code == 404
    login(world.admin)
    assert client.get("/compliance.pdf?start=2025-13-01&end=2025-06-30").status_code == 404


def test_the_cli_writes_the_same_pdf_and_needs_a_file(cast, world, runner, tmp_path):
    dashboard_history(cast, world)
    args = ["compliance", "--from", "2025-06-01", "--to", "2025-06-30", "--format", "pdf"]
    assert runner.invoke(args=args).exit_code == 2
    out = tmp_path / "measures.pdf"
    result = runner.invoke(args=args + ["--out", str(out), "--team", "Team A"])
    assert result.exit_code == 0, result.output
    text = pdf_text(out.read_bytes())
    assert "Episodes with T0 from 2025-06-01 to 2025-06-30, team Team A." in text
    assert "M4a. " in text
