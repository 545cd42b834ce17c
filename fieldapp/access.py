"""Who may see and change which child (DESIGN §9).

Every route that touches a child goes through ``child_for``. Anyone outside the child's case team
gets 404, not 403, so that case ids cannot be probed. The one 403 is an auditor's write: auditors
are known to read only, and the answer does not depend on the child.
"""
from __future__ import annotations

from sqlalchemy import Select, and_, exists, false, select, true
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden, NotFound

from . import clock
from .models import BreakGlassGrant, Child, Episode, User


def has_open_episode():
    """SQL condition: the child has an open episode, which is all an on-call worker may act on."""
    return Child.id.in_(select(Episode.child_id).where(Episode.ended_at.is_(None)))


def child_has_open_episode(db_session: Session, child: Child) -> bool:
    return db_session.scalar(select(Episode.id).where(Episode.child_id == child.id,
                                                      Episode.ended_at.is_(None))) is not None


def active_grant(db_session: Session, user: User, child: Child) -> BreakGlassGrant | None:
    return db_session.scalar(select(BreakGlassGrant).where(
        BreakGlassGrant.user_id == user.id, BreakGlassGrant.child_id == child.id,
        BreakGlassGrant.expires_at > clock.now()).order_by(BreakGlassGrant.expires_at.desc()).limit(1))


def _team_of_caseworker(child: Child) -> int | None:
    return child.caseworker.team_id if child.caseworker else None


def is_case_team(db_session: Session, user: User, child: Child) -> bool:
    """The assigned caseworker, a supervisor of their team, or on-call with a live grant."""
    if user.role == "caseworker":
        return child.caseworker_id == user.id
    if user.role == "supervisor":
        return user.team_id is not None and _team_of_caseworker(child) == user.team_id
    if user.role == "on_call":
        # The grant covers the emergency, not the child for good: it ends with the episode.
        return (active_grant(db_session, user, child) is not None
                and child_has_open_episode(db_session, child))
    return False


def can_work(db_session: Session, user: User, child: Child) -> bool:
    return user.role == "administrator" or is_case_team(db_session, user, child)


def can_see_sensitive(db_session: Session, user: User, child: Child) -> bool:
    # Administrators manage accounts and caseloads; medical, mental-health and trafficking details
    # are the case team's alone.
    return is_case_team(db_session, user, child)


def child_for(db_session: Session, user: User, child_id: int, *, write: bool = False) -> Child:
    """The child, if this user may work with them; 404 otherwise (403 for an auditor's write)."""
    if write and user.role == "auditor":
        raise Forbidden("Auditors read the measures and de-identified data; they change nothing.")
    child = db_session.get(Child, child_id)
    if child is None or not can_work(db_session, user, child):
        raise NotFound()
    return child


def caseload_condition(user: User):
    """SQL condition on Child: the children this user works. A caseworker's own, a supervisor's
    team's, all for an administrator, and for on-call those with a live grant and an open episode."""
    if user.role == "caseworker":
        return Child.caseworker_id == user.id
    if user.role == "supervisor":
        return Child.caseworker.has(User.team_id == user.team_id)
    if user.role == "administrator":
        return true()
    if user.role == "on_call":
        granted = exists().where(BreakGlassGrant.child_id == Child.id,
                                 BreakGlassGrant.user_id == user.id,
                                 BreakGlassGrant.expires_at > clock.now())
        return and_(granted, has_open_episode())
    return false()


def caseload_query(user: User) -> Select:
    """The children on this user's caseload, by name."""
    return (select(Child).where(caseload_condition(user))
            .order_by(Child.last_name, Child.first_name, Child.id))


def episode_for(db_session: Session, user: User, episode_id: int, *, write: bool = False) -> Episode:
    """The episode, if the user may work its child: 404 otherwise (403 for an auditor's write)."""
    episode = db_session.get(Episode, episode_id)
    child_for(db_session, user, episode.child_id if episode else 0, write=write)
    return episode


def break_glass_candidates_query() -> Select:
    """Children an on-call worker may ask to reach: those with an open episode, agency-wide."""
    return (select(Child).where(has_open_episode())
            .order_by(Child.status_since.desc(), Child.id))
