"""Break-the-glass: an on-call worker's audited, time-limited access to one child (DESIGN §9)."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy.orm import Session

from . import clock
from .access import child_has_open_episode
from .audit import record_event
from .models import BreakGlassGrant, Child, User

MIN_REASON_LENGTH = 10


class GrantRefused(ValueError):
    """The grant cannot be given; the message says why, for the on-call worker."""


def grant_access(db_session: Session, user: User, child: Child, reason: str) -> BreakGlassGrant:
    reason = reason.strip()
    if user.role != "on_call":
        raise GrantRefused("Only on-call workers break the glass.")
    if not child_has_open_episode(db_session, child):
        raise GrantRefused("This child has no open missing episode, so there is nothing to act on "
                           "after hours.")
    if len(reason) < MIN_REASON_LENGTH:
        raise GrantRefused(f"Give a reason of at least {MIN_REASON_LENGTH} characters: it is "
                           "recorded and reviewed.")
    granted_at = clock.now()
    grant = BreakGlassGrant(
        user=user, child=child, reason=reason, granted_at=granted_at,
        expires_at=granted_at + timedelta(hours=current_app.config["BREAK_GLASS_HOURS"]))
    db_session.add(grant)
    db_session.flush()
    record_event(db_session, user, "break_glass.grant", "break_glass_grant", grant.id,
                 child_id=child.id, changes={"expires_at": grant.expires_at},
                 sensitive={"reason": reason})
    return grant
