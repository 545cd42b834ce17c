"""Caseloads: assigning children to caseworkers, and handing them over on reassignment."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock
from .audit import record_event
from .models import Child, Handover, User


class ReassignmentRefused(ValueError):
    pass


def reassign_child(db_session: Session, child: Child, new_caseworker: User, actor: User | None,
                   note: str = "") -> Handover | None:
    """Move a child to another caseworker, who then sees a handover to acknowledge.

    Reassigning to the current caseworker changes nothing and returns None, so a retried request
    or a re-imported roster is harmless.
    """
    if new_caseworker.role != "caseworker" or not new_caseworker.active:
        raise ReassignmentRefused("Children are assigned to active caseworkers only.")
    if child.caseworker_id == new_caseworker.id:
        return None
    handover = Handover(child=child, from_user=child.caseworker, to_user=new_caseworker,
                        by_user_id=actor.id if actor else None, handed_at=clock.now(),
                        note=note.strip())
    old_id = child.caseworker_id
    child.caseworker = new_caseworker
    db_session.add(handover)
    db_session.flush()
    record_event(db_session, actor, "child.reassign", "child", child.id, child_id=child.id,
                 changes={"caseworker_id": [old_id, new_caseworker.id]})
    return handover


def pending_handovers(db_session: Session, user: User) -> list[Handover]:
    return list(db_session.scalars(select(Handover).where(
        Handover.to_user_id == user.id, Handover.acknowledged_at.is_(None),
        Handover.child.has(Child.caseworker_id == user.id)).order_by(Handover.handed_at)))


def acknowledge_handover(db_session: Session, handover: Handover, user: User) -> None:
    if handover.to_user_id != user.id:
        raise ReassignmentRefused("This handover is not yours to acknowledge.")
    if handover.acknowledged_at is not None:
        return
    handover.acknowledged_at = clock.now()
    record_event(db_session, user, "handover.acknowledge", "handover", handover.id,
                 child_id=handover.child_id)
