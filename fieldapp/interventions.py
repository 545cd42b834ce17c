"""Prevention records (DESIGN §5): interventions, caring-adult findings and Missouri risk factors,
each recorded with its date, and the "high risk, no intervention in 90 days" list.

Each write may change a past episode's risk at T0 (a record can be back-dated), so it rewrites
the child's episode summaries in the same transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import access, clock
from .audit import record_event
from .errors import FieldErrors
from .models import (CaringAdultFinding, Child, Intervention, RiskObservation, User,
                     VisitationPlan)
from .risk import MISSOURI_KEYS, RiskProfile, profile_at
from .summaries import refresh_child
from .vocabulary import VISIT_FREQUENCIES

INTERVENTION_KINDS = {
    "conversation": "A conversation about the dangers of running",
    "placement_change": "A placement change to a more secure or more family-like setting",
    "cac_referral": "A Child Advocacy Center referral",
    "tracking_device": "A tracking device",
    "caring_adult_connection": "A caring-adult connection",
    "other_services": "Other services",
}
NO_INTERVENTION_DAYS = 90


class PreventionInvalid(FieldErrors):
    """Field-by-field problems with a prevention record; nothing was saved."""


def _day_problem(day: date | None, label: str) -> str | None:
    if day is None:
        return f"Give the date {label} (YYYY-MM-DD)."
    if day > clock.today():
        return "This date is in the future."
    return None


def _finish(db_session: Session, actor: User, row, action: str, entity: str, changes: dict,
            sensitive: dict | None = None) -> None:
    db_session.add(row)
    db_session.flush()
    refresh_child(db_session, row.child_id)
    record_event(db_session, actor, action, entity, row.id, child_id=row.child_id,
                 changes=changes, sensitive=sensitive or {})


def record_intervention(db_session: Session, child: Child, actor: User, *, kind: str,
                        done_on: date | None, note: str = "") -> Intervention:
    errors = {}
    if kind not in INTERVENTION_KINDS:
        errors["kind"] = "Choose the kind of intervention."
    if problem := _day_problem(done_on, "of the intervention"):
        errors["done_on"] = problem
    if len(note) > 2000:
        errors["note"] = "This is too long (2,000 characters at most)."
    if errors:
        raise PreventionInvalid(errors)
    row = Intervention(child_id=child.id, kind=kind, done_on=done_on, note=note.strip(),
                       recorded_by_id=actor.id, recorded_at=clock.now())
    _finish(db_session, actor, row, "prevention.intervention", "intervention",
            {"kind": kind, "done_on": done_on}, {"note": note.strip()})
    return row


def record_caring_adult_finding(db_session: Session, child: Child, actor: User, *,
                                has_caring_adult: bool | None,
                                found_on: date | None) -> CaringAdultFinding:
    errors = {}
    if has_caring_adult is None:
        errors["has_caring_adult"] = "Say whether the child has a caring-adult relationship."
    if problem := _day_problem(found_on, "of the finding"):
        errors["found_on"] = problem
    if errors:
        raise PreventionInvalid(errors)
    row = CaringAdultFinding(child_id=child.id, has_caring_adult=has_caring_adult,
                             found_on=found_on, recorded_by_id=actor.id, recorded_at=clock.now())
    _finish(db_session, actor, row, "prevention.caring_adult", "caring_adult_finding",
            {"has_caring_adult": has_caring_adult, "found_on": found_on})
    return row


def record_risk_observation(db_session: Session, child: Child, actor: User, *, factor: str,
                            present: bool | None, observed_on: date | None) -> RiskObservation:
    errors = {}
    if factor not in MISSOURI_KEYS:
        errors["factor"] = "Choose the risk factor."
    if present is None:
        errors["present"] = "Say whether the factor is present or no longer present."
    if problem := _day_problem(observed_on, "it was observed"):
        errors["observed_on"] = problem
    if errors:
        raise PreventionInvalid(errors)
    row = RiskObservation(child_id=child.id, factor=factor, present=present,
                          observed_on=observed_on, recorded_by_id=actor.id,
                          recorded_at=clock.now())
    # A sensitive factor's name is itself sensitive, so the audit log keeps only its hash.
    sensitive = MISSOURI_KEYS[factor].sensitive
    _finish(db_session, actor, row, "prevention.risk_factor", "risk_observation",
            {"observed_on": observed_on, **({} if sensitive else {"factor": factor,
                                                                   "present": present})},
            {"factor": f"{factor}:{present}"} if sensitive else {})
    return row


def record_visitation_plan(db_session: Session, child: Child, actor: User, *, frequency: str,
                           with_whom: str, adopted_on: date | None) -> VisitationPlan:
    """A family visitation plan, recorded on its own (policy: weekly visits, at least monthly).
    It ends the plan in force, if any, on the day the new one is adopted."""
    errors = {}
    if frequency not in VISIT_FREQUENCIES:
        errors["frequency"] = "Choose how often the visits are."
    if not with_whom.strip():
        errors["with_whom"] = "Say with whom (each parent, siblings)."
    elif len(with_whom) > 160:
        errors["with_whom"] = "This is too long (160 characters at most)."
    if problem := _day_problem(adopted_on, "the plan was adopted"):
        errors["adopted_on"] = problem
    current = child.current_visitation_plan
    if current is not None and adopted_on is not None and adopted_on < current.adopted_on:
        errors["adopted_on"] = "This is before the current plan was adopted."
    if errors:
        raise PreventionInvalid(errors)
    if current is not None:
        current.ended_on = adopted_on
    row = VisitationPlan(child_id=child.id, frequency=frequency, with_whom=with_whom.strip(),
                         adopted_on=adopted_on, recorded_by_id=actor.id, recorded_at=clock.now())
    _finish(db_session, actor, row, "prevention.visitation_plan", "visitation_plan",
            {"frequency": frequency, "adopted_on": adopted_on}, {"with_whom": with_whom.strip()})
    return row


@dataclass(frozen=True)
class Prevention:
    """What a child's page shows of risk and prevention."""
    profile: RiskProfile
    interventions: list[Intervention]
    findings: list[CaringAdultFinding]
    observations: list[RiskObservation]
    last_intervention: date | None
    sensitive: bool  # whether the viewer is on the case team and sees sensitive factors


def last_intervention_on(db_session: Session, child_id: int) -> date | None:
    return db_session.scalar(select(func.max(Intervention.done_on))
                             .where(Intervention.child_id == child_id))


def prevention_of(db_session: Session, child: Child, sensitive_ok: bool) -> Prevention:
    """The child's risk now and the prevention record, with sensitive factors only for the case
    team (an observation of a sensitive factor is left out for anyone else)."""
    def newest(model, day_column):
        return list(db_session.scalars(select(model).where(model.child_id == child.id)
                                       .order_by(day_column.desc(), model.id.desc())))
    observations = [o for o in newest(RiskObservation, RiskObservation.observed_on)
                    if sensitive_ok or not MISSOURI_KEYS[o.factor].sensitive]
    return Prevention(profile_at(db_session, child), newest(Intervention, Intervention.done_on),
                      newest(CaringAdultFinding, CaringAdultFinding.found_on), observations,
                      last_intervention_on(db_session, child.id), sensitive_ok)


def needs_intervention(db_session: Session, child: Child, profile: RiskProfile) -> bool:
    """High risk now, and no intervention dated in the last 90 days."""
    last = last_intervention_on(db_session, child.id)
    return profile.high and (last is None
                             or last < clock.today() - timedelta(days=NO_INTERVENTION_DAYS))


def high_risk_without_intervention(db_session: Session, user: User) -> list[tuple[Child, RiskProfile]]:
    """The children on ``user``'s caseload at high risk with no intervention in 90 days, who
    are not released from custody. A caseload is a few dozen children, so each is evaluated."""
    children = db_session.scalars(access.caseload_query(user).where(
        Child.status != "released_from_custody")).all()
    found = []
    for child in children:
        profile = profile_at(db_session, child)
        if needs_intervention(db_session, child, profile):
            found.append((child, profile))
    return found
