"""FACES reconciliation (DESIGN §6): the children whose status in fieldapp differs from the living
arrangement that the state system reported in the last roster import.

Which FACES arrangement agrees with which fieldapp status is data (``FACES_ARRANGEMENTS``); the
report is one query that asks, for each child with an arrangement on record, whether the child's
current status is among those the arrangement agrees with.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, false, func, not_, or_, select, true
from sqlalchemy.orm import Session, aliased

from . import clock
from .access import caseload_condition
from .models import Child, FacesArrangement, Team, User
from .vocabulary import MISSING_STATUSES, STATUSES


@dataclass(frozen=True)
class Arrangement:
    key: str
    label: str
    agrees_with: frozenset[str]  # the fieldapp statuses this arrangement is consistent with
    afcars: tuple[str, ...] = ()  # AFCARS living-arrangement codes a roster may give instead


# FACES closes the missing arrangement only at the return (the `update_living_arrangement_return`
# step, T2 + 24 h), so a child located but not yet back agrees with a missing arrangement.
_STILL_AWAY = MISSING_STATUSES | {"located_pending_return"}

FACES_ARRANGEMENTS: dict[str, Arrangement] = {a.key: a for a in (
    Arrangement("placement", "In placement", frozenset({"in_placement"})),
    Arrangement("runaway", "Runaway (AFCARS 12)", _STILL_AWAY, ("12",)),
    Arrangement("whereabouts_unknown", "Whereabouts unknown (AFCARS 13)", _STILL_AWAY, ("13",)),
    Arrangement("unapproved_location", "At an unapproved location",
                frozenset({"unapproved_location_known"})),
    Arrangement("discharged", "Discharged from custody", frozenset({"released_from_custody"})),
)}
# What a roster cell may say: a key, or an AFCARS code standing for it.
ARRANGEMENT_SPELLINGS = {**{key: key for key in FACES_ARRANGEMENTS},
                         **{code: a.key for a in FACES_ARRANGEMENTS.values() for code in a.afcars}}


def arrangement_key(cell: str) -> str | None:
    """The arrangement a roster cell names (any case), or None if it names none."""
    return ARRANGEMENT_SPELLINGS.get(cell.strip().lower())


def record_arrangement(db_session: Session, child_id: int, key: str) -> bool:
    """Store the arrangement of this import for the child; True if it differs from the last."""
    row = db_session.get(FacesArrangement, child_id)
    if row is not None and row.arrangement == key:
        return False
    if row is None:
        db_session.add(FacesArrangement(child_id=child_id, arrangement=key,
                                        imported_at=clock.now()))
    else:
        row.arrangement, row.imported_at = key, clock.now()
    return True


def _disagrees():
    """SQL: the child's status is not one its FACES arrangement agrees with."""
    return or_(*[and_(FacesArrangement.arrangement == a.key,
                      not_(Child.status.in_(sorted(a.agrees_with))))
                 for a in FACES_ARRANGEMENTS.values()],
               # A key no longer in the data agrees with nothing: show it rather than hide it.
               FacesArrangement.arrangement.not_in(sorted(FACES_ARRANGEMENTS)))


def scope_of(user: User | None):
    """Whose children a reader reconciles: the CLI (no user) and auditors the whole agency (an
    auditor sees them de-identified), everyone else their caseload."""
    if user is None or user.role == "auditor":
        return true()
    return caseload_condition(user) if user.role in ("supervisor", "administrator") else false()


@dataclass(frozen=True)
class Difference:
    child_id: int
    case_id: str
    child_name: str
    team: str
    status: str
    status_label: str
    status_since: datetime
    arrangement: str
    arrangement_label: str
    imported_at: datetime
    missing_in_one: bool  # missing on one side only: the differences to chase first


def differences(db_session: Session, user: User | None = None) -> list[Difference]:
    """The children in ``user``'s scope whose fieldapp status and FACES arrangement disagree."""
    # An alias: the scope's EXISTS on the caseworker must not correlate with this join.
    worker = aliased(User)
    rows = db_session.execute(
        select(Child.id, Child.case_id, Child.first_name, Child.last_name, Child.status,
               Child.status_since, FacesArrangement.arrangement, FacesArrangement.imported_at,
               Team.name)
        .join(FacesArrangement, FacesArrangement.child_id == Child.id)
        .outerjoin(worker, worker.id == Child.caseworker_id)
        .outerjoin(Team, Team.id == worker.team_id)
        .where(scope_of(user), _disagrees())).all()
    found = []
    for r in rows:
        arrangement = FACES_ARRANGEMENTS.get(r.arrangement)
        faces_missing = arrangement is not None and bool(arrangement.agrees_with & MISSING_STATUSES)
        found.append(Difference(
            r.id, r.case_id, f"{r.first_name} {r.last_name}", r.name or "", r.status,
            STATUSES[r.status].label, r.status_since, r.arrangement,
            arrangement.label if arrangement else f"{r.arrangement} (not a known arrangement)",
            r.imported_at, faces_missing != (r.status in MISSING_STATUSES)))
    return sorted(found, key=lambda d: (not d.missing_in_one, d.case_id))


def without_arrangement(db_session: Session, user: User | None = None) -> int:
    """How many children in scope no roster import has given an arrangement for."""
    return db_session.scalar(
        select(func.count()).select_from(Child)
        .outerjoin(FacesArrangement, FacesArrangement.child_id == Child.id)
        .where(scope_of(user), FacesArrangement.child_id.is_(None)))


CSV_COLUMNS = ("case_id", "child", "team", "fieldapp_status", "fieldapp_status_since",
               "faces_arrangement", "faces_imported_at", "missing_in_one")


def csv_rows(found: list[Difference], pseudonym=None) -> list[dict]:
    """One row per difference; with ``pseudonym`` (case id -> stand-in) no name and no case id."""
    return [{"case_id": pseudonym(d.case_id) if pseudonym else d.case_id,
             "child": "" if pseudonym else d.child_name, "team": d.team,
             "fieldapp_status": d.status, "fieldapp_status_since": d.status_since.isoformat(),
             "faces_arrangement": d.arrangement, "faces_imported_at": d.imported_at.isoformat(),
             "missing_in_one": "yes" if d.missing_in_one else "no"} for d in found]
