"""Which review stage a checklist entry belongs to (DESIGN §7).

The missing checklist's one-time steps form the initial-response stage, the return checklist the
return stage; the closure stage covers the episode's end. The contact log belongs to no stage: it is
never frozen. An entry recorded after its stage was approved joins an addendum of that stage.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock
from .models import Episode, ReviewStage
from .policy import Step

STAGES = {"initial_response": "Initial response", "return": "Return", "closure": "Closure"}
STAGE_OF_CHECKLIST = {"missing": "initial_response", "return": "return"}


def base_stage(db_session: Session, episode: Episode, stage: str) -> ReviewStage | None:
    return db_session.scalar(select(ReviewStage).where(
        ReviewStage.episode_id == episode.id, ReviewStage.stage == stage,
        ReviewStage.addendum_of_id.is_(None)))


def ensure_stage(db_session: Session, episode: Episode, stage: str) -> ReviewStage:
    """The episode's stage of this kind, created (in progress) the first time it applies."""
    row = base_stage(db_session, episode, stage)
    if row is None:
        row = ReviewStage(episode=episode, stage=stage, state="in_progress", created_at=clock.now())
        db_session.add(row)
        db_session.flush()
    return row


def open_addendum(db_session: Session, approved: ReviewStage) -> ReviewStage:
    """The addendum still open for an approved stage, or a new one."""
    row = db_session.scalar(select(ReviewStage).where(
        ReviewStage.addendum_of_id == approved.id, ReviewStage.state != "approved")
        .order_by(ReviewStage.id.desc()).limit(1))
    if row is None:
        row = ReviewStage(episode_id=approved.episode_id, stage=approved.stage, state="in_progress",
                          addendum_of=approved, created_at=clock.now())
        db_session.add(row)
        db_session.flush()
    return row


def stage_for_entry(db_session: Session, episode: Episode, spec: Step) -> ReviewStage | None:
    """The stage a new entry on ``spec`` joins: its checklist's stage, or an addendum once that
    stage is approved. Contact-log steps join none."""
    if spec.contact_log:
        return None
    stage = ensure_stage(db_session, episode, STAGE_OF_CHECKLIST[spec.checklist])
    return open_addendum(db_session, stage) if stage.state == "approved" else stage
