"""Rules between the fields of one record: an episode's clocks in order, its end consistent, an
unapproved address with its details. They need no database, so they run before anything else.

Each rule returns the reasons the record breaks it (none when it is fine), and may fill in a
value that the others imply (an episode that ended by a return ends at T2).
"""
from __future__ import annotations

from .records import Record

LOCATION_FIELDS = ("location_address", "location_adult", "location_verified_how")
LOCATED_DETAILS = ("located_where", "located_by")


def _not_before(record: Record, later: str, earlier: str) -> list[str]:
    if record.get(later) is not None and record.get(earlier) is not None \
            and record.get(later) < record.get(earlier):
        return [f"{later} is before {earlier}"]
    return []


def _child(record: Record) -> list[str]:
    if record.get("status") == "unapproved_location_known":
        return ["a known unapproved address needs its details: give it as a status_change line"]
    return []


def _status_change(record: Record) -> list[str]:
    if record.get("status") != "unapproved_location_known":
        return [f"{name} is only for unapproved_location_known" for name in LOCATION_FIELDS
                if record.get(name)]
    return [f"{name} is required for unapproved_location_known" for name in LOCATION_FIELDS
            if not record.get(name)]


def _episode(record: Record) -> list[str]:
    """T0 <= T1 <= T2, and an end that says how and when (DESIGN §3)."""
    problems = _not_before(record, "discovered_at", "last_seen_at")
    problems += _not_before(record, "located_at", "discovered_at")
    problems += _not_before(record, "returned_at", "located_at")
    if record.get("located_at") is None:
        problems += [f"{name} needs located_at" for name in LOCATED_DETAILS + ("returned_at",)
                     if record.get(name)]
    else:
        problems += [f"{name} is required once the child was located" for name in LOCATED_DETAILS
                     if not record.get(name)]
    reason, ended = record.get("end_reason"), record.get("ended_at")
    if reason is None:
        if ended is not None or record.get("returned_at") is not None:
            problems.append("end_reason is required when the episode ended")
        return problems
    if reason == "returned_to_care":
        if record.get("returned_at") is None:
            problems.append("returned_to_care needs returned_at (T2)")
        elif ended is not None and ended != record.get("returned_at"):
            problems.append("a returned episode ends at returned_at; leave ended_at out")
        else:
            record.values["ended_at"] = record.get("returned_at")
        return problems
    if ended is None:
        problems.append(f"{reason} needs ended_at")
    if record.get("returned_at") is not None:
        problems.append(f"returned_at is only for returned_to_care, not {reason}")
    if reason == "released_from_custody" and record.get("court_order_date") is None:
        problems.append("released_from_custody needs court_order_date")
    if reason == "missing_again":
        # A child who runs again before being found stays in the same episode (DESIGN §3).
        if record.get("located_at") is None:
            problems.append("missing_again needs located_at: a child not yet found stays in "
                            "the same episode")
        problems += _not_before(record, "ended_at", "located_at")
    problems += _not_before(record, "ended_at", "discovered_at")
    return problems


def _dated_span(start: str, end: str):
    return lambda record: _not_before(record, end, start)


RULES = {
    "child": _child,
    "placement": _dated_span("started_on", "ended_on"),
    "visitation_plan": _dated_span("adopted_on", "ended_on"),
    "status_change": _status_change,
    "episode": _episode,
}


def record_problems(record: Record) -> list[str]:
    rule = RULES.get(record.kind)
    return [f"line {record.line}: {p}" for p in rule(record)] if rule else []
