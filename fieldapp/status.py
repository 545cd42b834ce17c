"""Child status changes: the rules of DESIGN §2, applied to the append-only status history."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock
from .errors import FieldErrors
from .audit import record_event
from .models import Child, LocationReview, StatusChange, User
from .vocabulary import MISSING_STATUSES, STATUSES, TRANSITIONS


class StatusChangeInvalid(FieldErrors):
    """Field-by-field problems with a requested status change, worded for the user."""


@dataclass
class UnapprovedLocation:
    address: str
    adult_present: str
    verified_how: str


def status_change_problems(child: Child, new_status: str, since: datetime | None, note: str,
                           location: UnapprovedLocation | None) -> dict[str, str]:
    """Everything wrong with the change, by form field. Empty means it may be recorded."""
    errors: dict[str, str] = {}
    if new_status not in STATUSES:
        errors["status"] = "Choose a status from the list."
    elif new_status == child.status:
        errors["status"] = f"The child is already {STATUSES[new_status].label.lower()}."
    elif new_status not in TRANSITIONS[child.status]:
        errors["status"] = (f"A child who is {STATUSES[child.status].label.lower()} cannot move "
                            f"straight to {STATUSES[new_status].label.lower()}.")
    if since is None:
        errors["since"] = "Give the date and time this became true."
    elif since > clock.now():
        errors["since"] = "This time is in the future. Give the time it actually happened."
    elif since < child.status_since:
        errors["since"] = ("This is before the child's current status began "
                           f"({child.status_since.isoformat(timespec='minutes')} UTC).")
    if (new_status in MISSING_STATUSES or child.status in MISSING_STATUSES) and not note.strip():
        errors["note"] = "A note is required when a child goes missing or is found."
    if new_status == "unapproved_location_known":
        if location is None or not location.address.strip():
            errors["location_address"] = "Give the address where the child is staying."
        if location is None or not location.adult_present.strip():
            errors["location_adult"] = "Name the adult present at that address."
        if location is None or not location.verified_how.strip():
            errors["location_verified_how"] = "Say how the address was verified."
    return errors


def change_status(db_session: Session, child: Child, actor: User | None, new_status: str,
                  since: datetime | None, note: str = "",
                  location: UnapprovedLocation | None = None) -> StatusChange:
    """Append a status change and make it the child's current status, or raise StatusChangeInvalid."""
    errors = status_change_problems(child, new_status, since, note, location)
    if errors:
        raise StatusChangeInvalid(errors)
    is_unapproved = new_status == "unapproved_location_known"
    change = StatusChange(
        child=child, status=new_status, since=since, set_by=actor, note=note.strip(),
        recorded_at=clock.now(),
        location_address=location.address.strip() if is_unapproved else None,
        location_adult=location.adult_present.strip() if is_unapproved else None,
        location_verified_how=location.verified_how.strip() if is_unapproved else None)
    db_session.add(change)
    old_status = child.status
    child.status, child.status_since = new_status, since
    db_session.flush()
    record_event(db_session, actor, "child.status_change", "status_change", change.id,
                 child_id=child.id, changes={"status": [old_status, new_status], "since": since},
                 sensitive={"note": note.strip()})
    return change


def record_initial_status(db_session: Session, child: Child, status: str, since: datetime,
                          actor: User | None, note: str) -> StatusChange:
    """The first row of a new child's history (roster import, demo data)."""
    change = StatusChange(child=child, status=status, since=since, set_by=actor, note=note,
                          recorded_at=clock.now())
    child.status, child.status_since = status, since
    db_session.add(change)
    return change


def current_status_change(child: Child) -> StatusChange | None:
    return child.status_changes[0] if child.status_changes else None


def location_awaiting_review(child: Child) -> StatusChange | None:
    """The unapproved-address change that still needs a supervisor's decision, if any."""
    change = current_status_change(child)
    if change and change.status == "unapproved_location_known" and change.location_review is None:
        return change
    return None


def location_needs_reverification(child: Child) -> bool:
    """A known unapproved address goes stale after the set number of days (DESIGN §2)."""
    if child.status != "unapproved_location_known":
        return False
    limit = timedelta(days=current_app.config["LOCATION_REVERIFY_DAYS"])
    return clock.now() - child.status_since > limit


def review_location(db_session: Session, change: StatusChange, supervisor: User, approved: bool,
                    note: str) -> LocationReview:
    if supervisor.role not in ("supervisor", "administrator"):
        raise StatusChangeInvalid({"decision": "Only a supervisor decides on an unapproved address."})
    if change.status != "unapproved_location_known":
        raise StatusChangeInvalid({"decision": "Only a known unapproved address is decided on."})
    if change.location_review is not None:
        raise StatusChangeInvalid({"decision": "This address has already been decided on."})
    if not approved and not note.strip():
        raise StatusChangeInvalid({"note": "Say why the address is not approved."})
    review = LocationReview(status_change=change, decided_by=supervisor, decided_at=clock.now(),
                            approved=approved, note=note.strip())
    db_session.add(review)
    db_session.flush()
    record_event(db_session, supervisor, "child.location_review", "location_review", review.id,
                 child_id=change.child_id, changes={"approved": approved})
    return review


def locations_awaiting_review_query(supervisor: User):
    """Unapproved-address changes on the supervisor's team (or everywhere, for an administrator)
    that are the child's current status and have no decision yet."""
    query = (select(StatusChange).join(Child, Child.id == StatusChange.child_id)
             .where(StatusChange.status == "unapproved_location_known",
                    Child.status == "unapproved_location_known",
                    Child.status_since == StatusChange.since,
                    ~StatusChange.location_reviews.any())
             .order_by(StatusChange.recorded_at))
    if supervisor.role == "supervisor":
        query = query.where(Child.caseworker.has(User.team_id == supervisor.team_id))
    return query
