"""The measures in SQL: one aggregate over the summary rows, the same on SQLite and PostgreSQL.

Every instant a query compares (period bounds, the cohort's moment, "now") is worked out in
Python in the agency's zone and passed in as a UTC parameter (DESIGN §3 *Time*); SQL only
compares instants, adds integers and counts, so the two databases cannot disagree.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import (Select, and_, case, exists, false, func, not_, or_, select, true,
                        union_all)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from .. import clock
from ..models import Child, StatusChange, User
from ..models.summaries import episode_summaries as S
from ..summaries import month_index
from ..vocabulary import MISSING_STATUSES
from .specs import ALL, AT_RISK, MEASURES, RETURNED, Measure

UNAPPROVED = "unapproved_location_known"
STATUS_ON_DATE = tuple(sorted(MISSING_STATUSES)) + (UNAPPROVED,)  # the statuses S1 tells apart


@dataclass(frozen=True)
class Population:
    """Which episodes the measures count (DESIGN §6): T0 in [start, end] (both agency-zone
    dates), or the point-in-time cohort on ``cohort_date``; per episode or per child; optionally
    only absences of at least ``min_days``; any one team or the whole agency."""
    start: date
    end: date
    cohort_date: date | None = None
    per_child: bool = False
    min_days: int | None = None
    team_id: int | None = None

    @property
    def status_date(self) -> date:
        """The date S1 counts statuses on."""
        return self.cohort_date or self.end


def _cut(day: date) -> datetime:
    """The end of ``day`` in the agency's zone: the start of the next day, as UTC."""
    return clock.local_midnight(day + timedelta(days=1))


class scanned(ColumnElement):
    """A column compared without its index: the same value, written ``+column`` on SQLite.

    A measure's period usually holds most of the summary rows (a year of a year's data), and
    SQLite without statistics still walks the T0 index for a range, fetching each row from the
    table in T0 order: at national size that random access cost several times a plain scan
    (bench/compliance_bench.py). The unary plus is SQLite's own way to keep a term off an
    index; PostgreSQL plans from its statistics and gets the bare column.
    """
    inherit_cache = True
    # The column is part of the statement's cache key, and its table of the FROM clause.
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column):
        self.column = column
        self.type = column.type

    @property
    def _from_objects(self):
        return self.column._from_objects


@compiles(scanned)
def _scanned(element, compiler, **kw):
    return compiler.process(element.column, **kw)


@compiles(scanned, "sqlite")
def _scanned_sqlite(element, compiler, **kw):
    return "+" + compiler.process(element.column, **kw)


def population_condition(pop: Population, now: datetime):
    t0 = scanned(S.c.t0)
    if pop.cohort_date is not None:
        # Missing at the close of the date: found after it, or not yet.
        cut = _cut(pop.cohort_date)
        where = [t0 < cut, or_(S.c.missing_until.is_(None), S.c.missing_until >= cut)]
    else:
        where = [t0 >= clock.local_midnight(pop.start), t0 < _cut(pop.end)]
    if pop.min_days:
        seconds = pop.min_days * 86400
        where.append(or_(S.c.missing_seconds >= seconds,
                         and_(S.c.missing_seconds.is_(None),
                              S.c.t0 <= now - timedelta(days=pop.min_days))))
    if pop.team_id is not None:
        where.append(S.c.team_id == pop.team_id)
    return and_(*where)


UNIVERSES = {ALL: true(), RETURNED: S.c.end_reason == "returned_to_care",
             AT_RISK: S.c.acf_factors > 0}


def _evidenced(step: str, within: bool):
    return S.c[f"{step}_on_time"] if within else S.c[f"{step}_at"].isnot(None)


def _missed(steps: tuple[str, ...], rule: str, within: bool):
    """Episodes where none (or not all) of ``steps`` are evidenced (within their deadline)."""
    gaps = [not_(_evidenced(step, within)) for step in steps]
    return and_(*gaps) if rule == "none" else or_(*gaps)


def _attempted(steps: tuple[str, ...]):
    return or_(*[S.c[f"{step}_attempted"] for step in steps])


def _flag(measure: Measure):
    column = S.c[measure.column]
    present = column if measure.at_least is None else column >= measure.at_least
    return present if measure.wanted else not_(present)


@dataclass(frozen=True)
class Counted:
    """SQL conditions of one measure (or one component of it) over a summary row."""
    universe: object
    any: object
    within: object
    attempted: object


def conditions(measure: Measure, step: str | None = None) -> Counted:
    """The conditions for ``measure``, or for one of its steps shown on its own."""
    universe = UNIVERSES[measure.universe]
    if measure.shape == "steps":
        steps = (step,) if step else measure.steps
        rule = "none" if step else measure.rule
        missed_any = _missed(steps, rule, within=False)
        return Counted(universe, missed_any, _missed(steps, rule, within=True),
                       and_(missed_any, _attempted(steps)))
    flagged = _flag(measure)
    return Counted(universe, flagged, flagged, false())


def _months(now: datetime):
    """(months missing, months with no search contact) of a row, as SQL integers (M6)."""
    until = func.coalesce(S.c.months_until, month_index(now.astimezone(clock.agency_zone()).date()))
    missing = case((until >= S.c.months_owed_from, until - S.c.months_owed_from + 1), else_=0)
    uncovered = case((missing > S.c.months_covered, missing - S.c.months_covered), else_=0)
    return missing, uncovered


def _figures(only: str | None = None) -> list[tuple[str, object, bool]]:
    """Every figure of every measure (or of the one ``only`` names): (name, SQL expression on a
    row, whether it is a count of matching rows rather than a sum of the expression)."""
    figures = []
    for measure in MEASURES:
        if measure.shape == "status" or (only is not None and measure.key != only):
            continue
        if measure.shape == "months":
            figures += [(f"{measure.key}|any", "uncovered", False),
                        (f"{measure.key}|den", "missing", False)]
            continue
        parts = [(measure.key, conditions(measure))]
        if measure.shape == "steps" and len(measure.steps) > 1:
            parts += [(f"{measure.key}:{step}", conditions(measure, step)) for step in measure.steps]
        for name, c in parts:
            figures += [(f"{name}|any", and_(c.universe, c.any), True),
                        (f"{name}|within", and_(c.universe, c.within), True),
                        (f"{name}|att", and_(c.universe, c.attempted), True),
                        (f"{name}|den", c.universe, True)]
    return figures


def measures_select(pop: Population, now: datetime, by_month: bool = False,
                    only: str | None = None) -> Select:
    """One SELECT of every figure over the population's rows (grouped by T0's month if asked).

    Per episode, a count is SUM(CASE WHEN … THEN 1 ELSE 0 END). Per child, a child counts once
    if any of its episodes matches: its rows are grouped, each condition becoming MAX(…), and the
    groups are summed. Most children have one episode in a period, and one row is its own group,
    so only the children with several rows go through the GROUP BY (whose sort dominated the
    per-child cost); the others' rows are summed as they are. The two parts are disjoint by
    child, so their sum is the GROUP BY over all rows.
    """
    missing, uncovered = _months(now)
    months = {"missing": missing, "uncovered": uncovered}
    population = population_condition(pop, now)

    def row_value(expression, counted):
        return case((expression, 1), else_=0) if counted else months[expression]

    figures = _figures(only)
    if not pop.per_child:
        groups = [S.c.t0_month] if by_month else []
        query = select(*[func.sum(row_value(e, counted)).label(name) for name, e, counted in figures],
                       *groups).where(population)
    else:
        month = [S.c.t0_month] if by_month else []
        several = (select(S.c.child_id).where(population).group_by(S.c.child_id)
                   .having(func.count() > 1))
        alone = (select(*[row_value(e, counted).label(name) for name, e, counted in figures], *month)
                 .where(population, S.c.child_id.not_in(several)))
        grouped = (select(*[(func.max if counted else func.sum)(row_value(e, counted)).label(name)
                            for name, e, counted in figures], *month)
                   .where(population, S.c.child_id.in_(several)).group_by(S.c.child_id, *month))
        children = union_all(alone, grouped).subquery()
        groups = [children.c.t0_month] if by_month else []
        query = select(*[func.sum(children.c[name]).label(name) for name, _e, _c in figures],
                       *groups)
    if by_month:
        query = query.group_by(*groups).order_by(*groups)
    return query


def drill_down_select(pop: Population, now: datetime, measure: Measure, variant: str = "any",
                      step: str | None = None) -> Select:
    """The episode ids behind a figure: ``variant`` is any, within or attempted."""
    if measure.shape == "months":
        _missing, uncovered = _months(now)
        hit = uncovered > 0
        universe = true()
    else:
        c = conditions(measure, step)
        universe, hit = c.universe, {"any": c.any, "within": c.within,
                                     "attempted": c.attempted}[variant]
    return (select(S.c.episode_id).where(population_condition(pop, now), universe, hit)
            .order_by(S.c.t0, S.c.episode_id))


# --- S1: children by precise status on a date ---------------------------------------------------

def status_on_select(pop: Population, statuses=STATUS_ON_DATE) -> Select:
    """Each child's status at the close of the date (its newest change before then), for the
    children in one of ``statuses``, with when that status began."""
    cut = _cut(pop.status_date)
    later = aliased(StatusChange)
    newer = exists().where(later.child_id == StatusChange.child_id, later.since < cut,
                           or_(later.since > StatusChange.since,
                               and_(later.since == StatusChange.since, later.id > StatusChange.id)))
    query = (select(StatusChange.child_id, StatusChange.status, StatusChange.since)
             .where(StatusChange.since < cut, not_(newer),
                    StatusChange.status.in_(statuses)))
    if pop.team_id is not None:
        query = query.join(Child, Child.id == StatusChange.child_id).join(
            User, User.id == Child.caseworker_id).where(User.team_id == pop.team_id)
    return query


def s1_select(pop: Population) -> Select:
    """S1's counts: the truly missing, the known unapproved, and those of them past the
    re-verification limit at the close of the date (flagged as unverified)."""
    cut = _cut(pop.status_date)
    stale = cut - timedelta(days=current_app.config["LOCATION_REVERIFY_DAYS"])
    rows = status_on_select(pop).subquery()
    missing = rows.c.status.in_(sorted(MISSING_STATUSES))
    return select(
        func.sum(case((missing, 1), else_=0)).label("missing"),
        func.sum(case((rows.c.status == UNAPPROVED, 1), else_=0)).label("unapproved"),
        func.sum(case((and_(rows.c.status == UNAPPROVED, rows.c.since < stale), 1),
                      else_=0)).label("unverified"),
        *[func.sum(case((rows.c.status == s, 1), else_=0)).label(s) for s in sorted(MISSING_STATUSES)])
