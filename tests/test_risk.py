"""Risk profiles (ACF and Missouri sets), prevention records, the pages that show them, and the
measures that read them (P1, P1-MO, P2, P3)."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.compliance.query import Population
from fieldapp.compliance.summary import compliance_summary
from fieldapp.interventions import (PreventionInvalid, high_risk_without_intervention,
                                    record_caring_adult_finding, record_intervention,
                                    record_risk_observation)
from fieldapp.models import (AuditEvent, Child, EpisodeSummary, Intervention, Placement,
                             VisitationPlan)
from fieldapp.risk import acf_factors_at, missouri_factors_at

from helpers import count, field_error, fresh, utc
from test_summaries import Story

T0 = utc(2025, 6, 10, 15)
JUNE = Population(date(2025, 6, 1), date(2025, 6, 30))


def keys(factors) -> set[str]:
    return {f.key for f in factors}


def add(*rows):
    with db.writing() as s:
        s.add_all(rows)


def write(function, child, user, **kwargs):
    with db.writing() as s:
        return function(s, s.get(Child, child.id), s.merge(user), **kwargs)


def plan(child, adopted=date(2025, 2, 1), ended=None):
    return VisitationPlan(child_id=child.id, frequency="weekly", with_whom="Mother",
                          adopted_on=adopted, ended_on=ended, recorded_at=utc(2025, 2, 1, 15))


@pytest.fixture
def story(world, policies, clock):
    clock.set(utc(2025, 1, 7))
    return Story(clock, world.child_a, world.cw_a)


def test_the_acf_factors_follow_the_records_as_they_stood(story, world, clock):
    child = world.child_a
    session = fresh()
    # Set-up: one foster-family placement since January, no visitation plan.
    assert keys(acf_factors_at(session, child.id, T0)) == {"no_caring_adult"}
    add(plan(child), *[Placement(child_id=child.id, setting="group_home_staff",
                                 provider_name=f"Home {n}", started_on=date(2025, 2, 1 + n),
                                 ended_on=None if n == 4 else date(2025, 2, 2 + n),
                                 created_at=utc(2025, 2, 1)) for n in range(5)])
    session = fresh()
    assert keys(acf_factors_at(session, child.id, T0)) == {"many_placements", "congregate"}
    assert keys(acf_factors_at(session, child.id, utc(2025, 1, 20, 15))) == {"no_caring_adult"}
    story.missing(T0)
    story.located(T0 + timedelta(days=1))
    assert "prior_episode" in keys(acf_factors_at(fresh(), child.id, T0 + timedelta(days=2)))
    assert "prior_episode" not in keys(acf_factors_at(fresh(), child.id, T0))  # not its own

    # A finding of no caring adult is a factor even with a plan; an unknown is not.
    clock.set(utc(2025, 7, 1))
    write(record_caring_adult_finding, child, world.cw_a, has_caring_adult=False,
          found_on=date(2025, 6, 20))
    assert "no_caring_adult" in keys(acf_factors_at(fresh(), child.id, utc(2025, 6, 21, 15)))
    assert "no_caring_adult" not in keys(acf_factors_at(fresh(), child.id, utc(2025, 6, 19, 15)))


def test_the_newest_missouri_observation_on_or_before_the_day_decides(story, world, clock):
    clock.set(utc(2025, 7, 1))
    child = world.child_a
    write(record_risk_observation, child, world.cw_a, factor="substance_use", present=True,
          observed_on=date(2025, 3, 1))
    write(record_risk_observation, child, world.cw_a, factor="substance_use", present=False,
          observed_on=date(2025, 5, 1))
    write(record_risk_observation, child, world.cw_a, factor="trafficking", present=True,
          observed_on=date(2025, 4, 1))
    session = fresh()
    assert keys(missouri_factors_at(session, child.id, utc(2025, 4, 15, 15))) == {
        "substance_use", "trafficking"}
    assert keys(missouri_factors_at(session, child.id, utc(2025, 5, 1, 15))) == {"trafficking"}
    assert keys(missouri_factors_at(session, child.id, utc(2025, 2, 1, 15))) == set()
    # The sensitive factor's name stays out of the audit log; the other's is there.
    events = fresh().scalars(select(AuditEvent).where(
        AuditEvent.action == "prevention.risk_factor").order_by(AuditEvent.seq)).all()
    assert "substance_use" in events[0].details and "trafficking" not in events[2].details


def test_back_dated_prevention_records_refresh_the_measures(story, world, clock):
    episode_id = story.missing(T0)
    before = compliance_summary(fresh(), JUNE)
    assert (before["P1-MO"]["count"], before["P2"]["denominator"], before["P2"]["count"]) == (0, 1, 0)
    clock.set(utc(2025, 7, 1))
    write(record_risk_observation, world.child_a, world.cw_a, factor="gang_or_weapon",
          present=True, observed_on=date(2025, 6, 1))
    write(record_intervention, world.child_a, world.cw_a, kind="conversation",
          done_on=date(2024, 12, 10), note="Talked about the dangers of running")  # T0 - 6 months
    assert fresh().get(EpisodeSummary, episode_id).mo_factors == 1
    after = compliance_summary(fresh(), JUNE)
    assert after["P1-MO"]["count"] == 1
    assert after["P2"]["count"] == 1  # exactly 6 months before T0's day still counts
    write(record_intervention, world.child_a, world.cw_a, kind="other_services",
          done_on=date(2025, 6, 11))  # after T0: not prevention of this episode
    assert compliance_summary(fresh(), JUNE)["P2"]["count"] == 1


def test_an_intervention_just_over_six_months_before_t0_does_not_count(story, world, clock):
    story.missing(T0)
    clock.set(utc(2025, 7, 1))
    write(record_intervention, world.child_a, world.cw_a, kind="tracking_device",
          done_on=date(2024, 12, 9))
    assert compliance_summary(fresh(), JUNE)["P2"]["count"] == 0


def test_bad_prevention_input_is_refused_field_by_field(world, policies, clock):
    with pytest.raises(PreventionInvalid) as refused:
        write(record_intervention, world.child_a, world.cw_a, kind="magic", done_on=None)
    assert set(refused.value.errors) == {"kind", "done_on"}
    with pytest.raises(PreventionInvalid) as refused:
        write(record_risk_observation, world.child_a, world.cw_a, factor="homework",
              present=None, observed_on=clock.now().date() + timedelta(days=2))
    assert set(refused.value.errors) == {"factor", "present", "observed_on"}
    assert count(Intervention) == 0


def test_the_child_page_shows_prevention_and_sensitive_factors_only_to_the_case_team(
        client, login, world, policies, clock):
    write(record_intervention, world.child_a, world.cw_a, kind="cac_referral",
          done_on=date(2026, 2, 1))
    write(record_risk_observation, world.child_a, world.cw_a, factor="pregnancy_history",
          present=True, observed_on=date(2026, 1, 5))
    login(world.cw_a)
    page = client.get(f"/children/{world.child_a.id}").text
    assert "A Child Advocacy Center referral</strong>, 2026-02-01" in page
    assert "A history of pregnancy" in page
    login(world.admin)
    page = client.get(f"/children/{world.child_a.id}").text
    assert "A Child Advocacy Center referral" in page
    assert "pregnancy" not in page.lower()
    assert "sensitive factors: case team only" in page


def test_the_caseload_badge_shows_the_factors_the_viewer_may_see(client, login, world, policies):
    write(record_risk_observation, world.child_a, world.cw_a, factor="self_harm", present=True,
          observed_on=date(2026, 1, 5))
    add(plan(world.child_b))
    login(world.cw_a)
    page = client.get("/caseload").text
    assert "High risk" in page and "Suicidal or self-harm behaviour" in page
    login(world.admin)
    page = client.get("/caseload").text
    assert "Suicidal or self-harm" not in page
    assert "Other factors are shown to the case team only." in page
    assert page.count("High risk") == 1  # Bobby has a visitation plan and no factor


def test_recording_through_the_page_and_its_422(client, login, world, policies, clock):
    login(world.cw_a)
    url = f"/children/{world.child_a.id}/prevention/intervention"
    refused = client.post(url, data={"intervention-kind": "conversation",
                                     "intervention-done_on": "tomorrow"})
    assert refused.status_code == 422
    assert field_error(refused.text, "intervention-done_on") == (
        "Give the date of the intervention (YYYY-MM-DD).")
    assert count(Intervention) == 0
    saved = client.post(url, data={"intervention-kind": "conversation",
                                   "intervention-done_on": "2026-03-01"})
    assert saved.status_code == 303
    [row] = fresh().scalars(select(Intervention)).all()
    assert (row.kind, row.done_on, row.recorded_by_id) == ("conversation", date(2026, 3, 1),
                                                          world.cw_a.id)
    # The administrator may work the child but is not offered, nor allowed, sensitive factors.
    login(world.admin)
    form = client.get(f"/children/{world.child_a.id}/prevention").text
    assert "Possible gang involvement" in form and "Mental illness" not in form
    sneaky = client.post(f"/children/{world.child_a.id}/prevention/risk-factor",
                         data={"risk-factor-factor": "mental_illness", "risk-factor-present": "yes",
                               "risk-factor-observed_on": "2026-03-01"})
    assert sneaky.status_code == 422


def test_outsiders_get_404_and_auditors_403(client, login, world, policies):
    url = f"/children/{world.child_a.id}/prevention"
    login(world.cw_b)
    assert client.get(url).status_code == 404
    login(world.auditor)
    assert client.post(url + "/intervention", data={"intervention-kind": "conversation",
                                                     "intervention-done_on": "2026-03-01"}
                       ).status_code == 403
    assert count(Intervention) == 0


def test_the_high_risk_list_holds_children_without_an_intervention_in_90_days(
        client, login, world, policies, clock):
    add(plan(world.child_b))
    assert [c.id for c, _ in high_risk_without_intervention(fresh(), fresh().merge(world.cw_a))] == [
        world.child_a.id]  # no visitation plan: lacking caring adults
    write(record_intervention, world.child_a, world.cw_a, kind="caring_adult_connection",
          done_on=clock.now().date() - timedelta(days=90))
    assert high_risk_without_intervention(fresh(), fresh().merge(world.sup_a)) == []
    clock.advance(days=1)
    login(world.sup_a)
    page = client.get("/prevention/high-risk").text
    assert "Avery" in page and "Lacking caring adults" in page
    assert "Brook" not in page  # Team B's child is not on Team A's caseloads


def test_a_visitation_plan_recorded_on_the_page_ends_the_old_one_and_refreshes_p3(
        story, world, client, login, clock):
    episode_id = story.missing(T0)
    clock.set(utc(2025, 7, 1))
    login(world.cw_a)
    url = f"/children/{world.child_a.id}/prevention/visitation-plan"
    refused = client.post(url, data={"visitation-plan-frequency": "daily",
                                     "visitation-plan-with_whom": "",
                                     "visitation-plan-adopted_on": "2025-06-01"})
    assert refused.status_code == 422
    assert field_error(refused.text, "visitation-plan-frequency") == "Choose how often the visits are."
    assert field_error(refused.text, "visitation-plan-with_whom").startswith("Say with whom")
    for adopted in ("2025-06-01", "2025-06-20"):
        assert client.post(url, data={"visitation-plan-frequency": "weekly",
                                      "visitation-plan-with_whom": "Mother",
                                      "visitation-plan-adopted_on": adopted}).status_code == 303
    plans = fresh().scalars(select(VisitationPlan).order_by(VisitationPlan.adopted_on)).all()
    assert [(p.adopted_on, p.ended_on) for p in plans] == [
        (date(2025, 6, 1), date(2025, 6, 20)), (date(2025, 6, 20), None)]
    assert fresh().get(EpisodeSummary, episode_id).visitation_plan_at_t0  # back-dated before T0
    assert compliance_summary(fresh(), JUNE)["P3"]["count"] == 0
    assert "Weekly with Mother, 2025-06-01 to 2025-06-20" in client.get(
        f"/children/{world.child_a.id}").text
