"""Per-child figures (DESIGN §6 population c) against a reference worked out in Python from the
per-episode drill-downs: a child counts once, in the total and in each T0 month, if any of its
episodes in the population matches. The query groups only the children with several episodes
(the rest are summed row by row), so the cases here mix the two kinds, on both databases."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from fieldapp.compliance.query import Population
from fieldapp.compliance.specs import MEASURES
from fieldapp.compliance.summary import compliance_summary, drill_down
from fieldapp.models import EpisodeSummary

from helpers import fresh, utc
from test_summaries import Story

JUNE_JULY = Population(date(2025, 6, 1), date(2025, 7, 31))
PER_CHILD = Population(date(2025, 6, 1), date(2025, 7, 31), per_child=True)


@pytest.fixture
def histories(world, policies, clock, make_child):
    """Children with one, two (same month, two months, one outside the period) episodes."""
    clock.set(utc(2025, 1, 7))
    story = {name: Story(clock, make_child(world.cw_a), world.cw_a)
             for name in ("outside_and_in", "june_and_july", "twice_in_june", "once", "still")}
    june, july = utc(2025, 6, 10, 15), utc(2025, 7, 5, 15)

    def away_and_back(s, t0, report=False):
        s.missing(t0)
        if report:
            s.step("report_law_enforcement", t0 + timedelta(hours=1))
        s.located(t0 + timedelta(days=1))
        s.returned(t0 + timedelta(days=1, hours=2))

    away_and_back(story["outside_and_in"], utc(2025, 5, 20, 15), report=True)
    away_and_back(story["outside_and_in"], june)
    away_and_back(story["june_and_july"], june, report=True)
    away_and_back(story["june_and_july"], july)
    away_and_back(story["twice_in_june"], june, report=True)
    away_and_back(story["twice_in_june"], june + timedelta(days=7))
    away_and_back(story["once"], june, report=True)
    s = story["still"]
    s.missing(july)
    s.step("report_ncmec", july + timedelta(hours=5))
    s.contact(july + timedelta(hours=3))
    clock.set(utc(2025, 9, 1))
    return story


def reference(key: str, variant: str) -> tuple[int, dict[str, int]]:
    """Distinct children behind the per-episode drill-down: in all, and by T0 month."""
    rows = {r.episode_id: r for r in fresh().scalars(select(EpisodeSummary))}
    hits = [rows[i] for i in drill_down(fresh(), JUNE_JULY, key, variant)]
    months: dict[str, set[int]] = {}
    for row in hits:
        months.setdefault(row.t0_month, set()).add(row.child_id)
    return len({row.child_id for row in hits}), {m: len(c) for m, c in months.items()}


def test_per_child_equals_distinct_children_of_the_episodes(histories):
    per_episode = compliance_summary(fresh(), JUNE_JULY)
    per_child = compliance_summary(fresh(), PER_CHILD)
    assert per_episode["M1"]["denominator"] == 7  # the May episode is outside the period
    assert per_child["M1"]["denominator"] == 5
    assert per_child["M1"]["breakdowns"]["by_month"]["2025-06"]["denominator"] == 4
    assert per_child["M1"]["breakdowns"]["by_month"]["2025-07"]["denominator"] == 2
    checked = 0
    for measure in MEASURES:
        if measure.shape not in ("steps", "flag"):
            continue
        for variant, figure in (("any", lambda f: f["count"]),
                                ("within", lambda f: f["within_deadline"]["count"]),
                                ("attempted", lambda f: f["attempted"])):
            if measure.shape == "flag" and variant != "any":
                continue
            total, by_month = reference(measure.key, variant)
            assert figure(per_child[measure.key]) == total, (measure.key, variant)
            months = per_child[measure.key]["breakdowns"]["by_month"]
            for month, counted in months.items():
                assert figure(counted) == by_month.get(month, 0), (measure.key, variant, month)
            checked += 1
    assert checked >= 20
    # M1 by hand: the children with an episode lacking a law-enforcement report in the period.
    assert per_child["M1"]["count"] == 4  # all but "once"
    # M6 stays in months per child: the same months as per episode.
    assert per_child["M6"]["count"] == per_episode["M6"]["count"]
    assert per_child["M6"]["denominator"] == per_episode["M6"]["denominator"]
