"""Supervisor review by stage (DESIGN §7): submit, return with comments, approve with a
signature, and the monthly check of a missing child's contact log.

A stage goes in_progress → submitted → approved, or back through returned. Whoever recorded steps
in a stage cannot approve it. Approval stores the SHA-256 of the stage's canonical content, and from
then on database triggers refuse to change its entries; corrections go to an addendum.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock
from .errors import FieldErrors
from .access import caseload_condition
from .audit import record_event
from .checklists import StepView, deadline_status, evidence_of, step_views
from .models import Child, ContactCheck, Episode, ReviewEvent, ReviewStage, User
from .stages import STAGE_OF_CHECKLIST, STAGES

REVIEWERS = ("supervisor", "administrator")


class ReviewRefused(FieldErrors):
    """A review action that cannot be taken; ``errors`` are by form field, for the user."""


def stages_of(db_session: Session, episode: Episode) -> list[ReviewStage]:
    """The episode's stages in order, each base stage followed by its addenda."""
    rows = db_session.scalars(select(ReviewStage).where(ReviewStage.episode_id == episode.id)
                              .order_by(ReviewStage.id)).all()
    order = list(STAGES)
    return sorted(rows, key=lambda r: (order.index(r.stage), r.addendum_of_id is not None, r.id))


def steps_in(stage: ReviewStage) -> list[StepView]:
    """The steps a stage covers: its checklist's steps for a base stage (not the contact log),
    or the steps with entries in it for an addendum. The closure stage covers none."""
    views = step_views(stage.episode)
    if stage.addendum_of_id is not None:
        keys = {e.step.step_key for e in stage.entries}
        return [v for v in views if v.spec.key in keys]
    return [v for v in views if not v.spec.contact_log
            and STAGE_OF_CHECKLIST.get(v.spec.checklist) == stage.stage]


def open_steps(stage: ReviewStage) -> list[StepView]:
    return [v for v in steps_in(stage) if v.is_open]


def missed_deadlines(stage: ReviewStage, now: datetime) -> list[tuple[StepView, str]]:
    """Law and policy deadlines missed in the stage, for the queue's highlight."""
    out = []
    for view in steps_in(stage):
        if view.spec.basis == "agency_target":
            continue
        status = deadline_status(view, now)
        if status.startswith(("missed", "overdue")):
            out.append((view, status))
    return out


def canonical_content(stage: ReviewStage) -> str:
    """What an approval signs: the stage's entries, its reasons for open steps, and (for the
    closure) the episode's clocks and end, as sorted-key JSON with UTC ISO-8601 times."""
    episode = stage.episode

    def iso(value):
        return value.isoformat() if value else None
    content = {
        "episode_id": episode.id, "stage": stage.stage, "addendum_of": stage.addendum_of_id,
        "policy_sha256": episode.policy_version.sha256,
        "entries": [{"id": e.id, "step": e.step.step_key, "outcome": e.outcome,
                     "done_at": iso(e.done_at), "recorded_at": iso(e.recorded_at),
                     "received_at": iso(e.received_at), "recorded_by": e.recorded_by_id,
                     "evidence": evidence_of(e), "reason": e.reason,
                     "supersedes": e.supersedes_id} for e in stage.entries],
        "open_step_reasons": json.loads(stage.open_step_reasons or "{}"),
    }
    if stage.stage == "closure":
        content["episode"] = {"discovered_at": iso(episode.discovered_at),
                              "located_at": iso(episode.located_at),
                              "returned_at": iso(episode.returned_at),
                              "end_reason": episode.end_reason, "ended_at": iso(episode.ended_at),
                              "court_order_date": iso(episode.court_order_date)}
    return json.dumps(content, sort_keys=True, separators=(",", ":"))


def content_hash(stage: ReviewStage) -> str:
    return hashlib.sha256(canonical_content(stage).encode()).hexdigest()


def _readiness_problem(stage: ReviewStage) -> str | None:
    episode = stage.episode
    if stage.stage == "return" and episode.returned_at is None:
        return "The return is reviewed once the child is back in care."
    if stage.stage == "closure" and episode.is_open:
        return "The closure is reviewed once the episode has ended."
    return None


def submit_stage(db_session: Session, stage: ReviewStage, actor: User,
                 reasons: dict[str, str]) -> ReviewStage:
    """Send the stage for review. Every step still open needs a reason."""
    if stage.state not in ("in_progress", "returned"):
        raise ReviewRefused({"stage": f"This stage is {stage.state.replace('_', ' ')}; "
                                      "it cannot be submitted now."})
    problem = _readiness_problem(stage)
    if problem:
        raise ReviewRefused({"stage": problem})
    kept = {}
    errors = {}
    for view in open_steps(stage):
        reason = (reasons.get(view.spec.key) or "").strip()
        if not reason:
            errors[f"reason_{view.spec.key}"] = f"Say why “{view.spec.title}” is still open."
        kept[view.spec.key] = reason
    if errors:
        raise ReviewRefused(errors)
    stage.state, stage.submitted_at, stage.submitted_by_id = "submitted", clock.now(), actor.id
    stage.open_step_reasons = json.dumps(kept, sort_keys=True)
    db_session.add(ReviewEvent(stage=stage, action="submit", actor_id=actor.id, at=clock.now()))
    db_session.flush()
    record_event(db_session, actor, "review.submit", "review_stage", stage.id,
                 child_id=stage.episode.child_id,
                 changes={"stage": stage.stage, "open_steps": sorted(kept)})
    return stage


def _require_reviewer(stage: ReviewStage, reviewer: User) -> None:
    if reviewer.role not in REVIEWERS:
        raise ReviewRefused({"stage": "Only a supervisor or an administrator reviews a stage."})
    if stage.state != "submitted":
        raise ReviewRefused({"stage": "This stage is not waiting for review."})


def return_stage(db_session: Session, stage: ReviewStage, reviewer: User, comment: str,
                 step_comments: dict[str, str]) -> ReviewStage:
    """Send the stage back with comments, shown on the affected steps."""
    _require_reviewer(stage, reviewer)
    step_comments = {k: v.strip() for k, v in step_comments.items() if v and v.strip()}
    if not comment.strip() and not step_comments:
        raise ReviewRefused({"comment": "Say what needs fixing, in general or on a step."})
    stage.state = "returned"
    db_session.add(ReviewEvent(stage=stage, action="return", actor_id=reviewer.id, at=clock.now(),
                               comment=comment.strip(),
                               step_comments=json.dumps(step_comments, sort_keys=True)))
    db_session.flush()
    record_event(db_session, reviewer, "review.return", "review_stage", stage.id,
                 child_id=stage.episode.child_id, changes={"steps": sorted(step_comments)},
                 sensitive={"comment": comment.strip()})
    return stage


def recorders(stage: ReviewStage) -> set[int]:
    return {e.recorded_by_id for e in stage.entries if e.recorded_by_id}


def approve_stage(db_session: Session, stage: ReviewStage, reviewer: User,
                  password_ok: bool) -> ReviewStage:
    """Sign the stage off. The caller checks the password first, outside the write lock."""
    _require_reviewer(stage, reviewer)
    if reviewer.id in recorders(stage):
        raise ReviewRefused({"password": "You recorded steps in this stage, so you cannot approve "
                                         "it. A second supervisor or an administrator approves it."})
    if not password_ok:
        raise ReviewRefused({"password": "That password is not right. Re-enter your password "
                                         "to sign."})
    stage.content_sha256 = content_hash(stage)
    stage.state, stage.approved_at = "approved", clock.now()
    stage.approved_by_id, stage.approved_name, stage.approved_role = (
        reviewer.id, reviewer.display_name, reviewer.role)
    db_session.add(ReviewEvent(stage=stage, action="approve", actor_id=reviewer.id, at=clock.now()))
    db_session.flush()
    record_event(db_session, reviewer, "review.approve", "review_stage", stage.id,
                 child_id=stage.episode.child_id,
                 changes={"stage": stage.stage, "sha256": stage.content_sha256})
    return stage


def step_comments_for(db_session: Session, episode: Episode, step_key: str) -> list[ReviewEvent]:
    """Return comments on this step, from stages currently sent back."""
    events = db_session.scalars(select(ReviewEvent).join(ReviewStage).where(
        ReviewStage.episode_id == episode.id, ReviewStage.state == "returned",
        ReviewEvent.action == "return").order_by(ReviewEvent.at)).all()
    return [e for e in events if json.loads(e.step_comments or "{}").get(step_key)
            or (e.comment and step_key in {v.spec.key for v in steps_in(e.stage)})]


def queue_for(db_session: Session, reviewer: User) -> list[ReviewStage]:
    """Submitted stages waiting for this reviewer's team (or everyone's), oldest first."""
    if reviewer.role not in REVIEWERS:
        return []
    return list(db_session.scalars(
        select(ReviewStage).join(Episode).join(Child, Child.id == Episode.child_id)
        .where(ReviewStage.state == "submitted", caseload_condition(reviewer))
        .order_by(ReviewStage.submitted_at)))


# --- the monthly contact-log check -----------------------------------------------------------

def current_month():
    return clock.today().replace(day=1)


def episode_checks(db_session: Session, episode: Episode) -> list[ContactCheck]:
    return list(db_session.scalars(select(ContactCheck).where(
        ContactCheck.episode_id == episode.id).order_by(ContactCheck.month)))


def contact_check_due(db_session: Session, episode: Episode) -> bool:
    """While the child is missing, a supervisor checks the contact log once a calendar month."""
    if not episode.is_open or episode.located_at is not None:
        return False
    month = current_month()
    return not any(c.month == month for c in episode_checks(db_session, episode))


def record_contact_check(db_session: Session, episode: Episode, supervisor: User,
                         note: str) -> ContactCheck:
    if supervisor.role not in REVIEWERS:
        raise ReviewRefused({"note": "Only a supervisor records the monthly check."})
    if not contact_check_due(db_session, episode):
        raise ReviewRefused({"note": "No check is due: the child is not missing, or this month's "
                                     "check is already recorded."})
    check = ContactCheck(episode_id=episode.id, month=current_month(), checked_by_id=supervisor.id,
                         checked_at=clock.now(), note=note.strip())
    db_session.add(check)
    db_session.flush()
    record_event(db_session, supervisor, "review.contact_check", "contact_check", check.id,
                 child_id=episode.child_id, changes={"month": check.month})
    return check


def contact_checks_due(db_session: Session, supervisor: User) -> list[Episode]:
    """The team's missing children whose contact log has not been checked this month."""
    if supervisor.role not in REVIEWERS:
        return []
    query = (select(Episode).join(Child, Child.id == Episode.child_id)
             .where(Episode.ended_at.is_(None), Episode.located_at.is_(None),
                    caseload_condition(supervisor)))
    return [e for e in db_session.scalars(query) if contact_check_due(db_session, e)]
