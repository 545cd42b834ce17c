"""Risk of going missing (DESIGN §5): the ACF factor set and Missouri's individual set, evaluated
from the recorded data at any moment, and in particular at an episode's T0.

The factor sets are data. Each ACF factor is a function of the records as they stood on a day;
each Missouri factor is the newest observation of it dated on or before that day. A factor
nobody recorded is absent, and an unknown caring-adult finding is not a factor.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import clock
from .models import (CaringAdultFinding, Child, Episode, Intervention, Placement, RiskObservation,
                     VisitationPlan)
from .vocabulary import CONGREGATE_SETTINGS

MANY_PLACEMENTS = 6  # "six or more prior placements" (ACF, as the OIG counted them)
INTERVENTION_LOOKBACK_MONTHS = 6  # P2: an intervention in the 6 months before T0


@dataclass(frozen=True)
class Factor:
    key: str
    label: str
    sensitive: bool = False  # trafficking, mental health, pregnancy: case team only (DESIGN §9)


ACF_FACTORS = (
    Factor("prior_episode", "A prior missing episode"),
    Factor("many_placements", f"{MANY_PLACEMENTS} or more placements"),
    Factor("congregate", "In a congregate placement (group home, residential, shelter)"),
    Factor("no_caring_adult", "Lacking caring adults (no visitation plan, or a finding of none)"),
)
MISSOURI_FACTORS = (
    Factor("substance_use", "Alcohol or drug use"),
    Factor("mental_illness", "Mental illness", sensitive=True),
    Factor("self_harm", "Suicidal or self-harm behaviour", sensitive=True),
    Factor("trafficking", "Possible sex-trafficking victimization", sensitive=True),
    Factor("gang_or_weapon", "Possible gang involvement or carrying a weapon"),
    Factor("pregnancy_history", "A history of pregnancy", sensitive=True),
)
MISSOURI_KEYS = {f.key: f for f in MISSOURI_FACTORS}


def add_months(day: date, months: int) -> date:
    """The same day ``months`` calendar months later (or earlier), clamped to the month's end."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class RiskProfile:
    """The factors present for a child on a day, by set."""
    on: date
    acf: tuple[Factor, ...]
    missouri: tuple[Factor, ...]

    @property
    def high(self) -> bool:
        return bool(self.acf or self.missouri)

    def visible(self, sensitive_ok: bool) -> tuple[Factor, ...]:
        """The factors this viewer may see; the sensitive ones only for the case team."""
        return tuple(f for f in self.acf + self.missouri if sensitive_ok or not f.sensitive)


def _day(at: datetime) -> date:
    return at.astimezone(clock.agency_zone()).date()


def _in_force(started, ended, day: date) -> bool:
    return started <= day and (ended is None or ended >= day)


def visitation_plan_on(db_session: Session, child_id: int, day: date) -> bool:
    plans = db_session.execute(select(VisitationPlan.adopted_on, VisitationPlan.ended_on)
                               .where(VisitationPlan.child_id == child_id)).all()
    return any(_in_force(adopted, ended, day) for adopted, ended in plans)


def caring_adult_on(db_session: Session, child_id: int, day: date) -> bool | None:
    """The newest finding dated on or before ``day``: True, False, or None when unknown."""
    return db_session.scalar(
        select(CaringAdultFinding.has_caring_adult)
        .where(CaringAdultFinding.child_id == child_id, CaringAdultFinding.found_on <= day)
        .order_by(CaringAdultFinding.found_on.desc(), CaringAdultFinding.id.desc()).limit(1))


def _placements_until(db_session: Session, child_id: int, day: date) -> list[Placement]:
    return list(db_session.scalars(
        select(Placement).where(Placement.child_id == child_id, Placement.started_on <= day)
        .order_by(Placement.started_on.desc(), Placement.id.desc())))


def acf_factors_at(db_session: Session, child_id: int, at: datetime) -> tuple[Factor, ...]:
    """The ACF factors present at the instant ``at`` (a prior episode is one found before it)."""
    day = _day(at)
    placements = _placements_until(db_session, child_id, day)
    current = next((p for p in placements if _in_force(p.started_on, p.ended_on, day)), None)
    prior = db_session.scalar(select(func.count()).select_from(Episode).where(
        Episode.child_id == child_id, Episode.discovered_at < at))
    present = {
        "prior_episode": prior > 0,
        "many_placements": len(placements) >= MANY_PLACEMENTS,
        "congregate": current is not None and current.setting in CONGREGATE_SETTINGS,
        "no_caring_adult": (not visitation_plan_on(db_session, child_id, day)
                            or caring_adult_on(db_session, child_id, day) is False),
    }
    return tuple(f for f in ACF_FACTORS if present[f.key])


def missouri_factors_at(db_session: Session, child_id: int, at: datetime) -> tuple[Factor, ...]:
    """Missouri's individual factors whose newest observation on or before ``at``'s day says
    present."""
    rows = db_session.execute(
        select(RiskObservation.factor, RiskObservation.present)
        .where(RiskObservation.child_id == child_id, RiskObservation.observed_on <= _day(at))
        .order_by(RiskObservation.observed_on, RiskObservation.id)).all()
    latest = {factor: present for factor, present in rows}  # later rows overwrite earlier ones
    return tuple(f for f in MISSOURI_FACTORS if latest.get(f.key))


def profile_at(db_session: Session, child: Child, at: datetime | None = None) -> RiskProfile:
    at = at or clock.now()
    return RiskProfile(_day(at), acf_factors_at(db_session, child.id, at),
                       missouri_factors_at(db_session, child.id, at))


def intervention_within(db_session: Session, child_id: int, before: datetime,
                        months: int = INTERVENTION_LOOKBACK_MONTHS) -> bool:
    """Whether an intervention is dated in the ``months`` calendar months up to ``before``'s day."""
    day = _day(before)
    return db_session.scalar(select(func.count()).select_from(Intervention).where(
        Intervention.child_id == child_id, Intervention.done_on <= day,
        Intervention.done_on >= add_months(day, -months))) > 0
