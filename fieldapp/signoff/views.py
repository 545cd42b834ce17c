"""Supervisor review: the queue, an episode's stages, and submit / return / sign-off."""
from __future__ import annotations

import json

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required

from .. import access, clock, db
from ..accounts import check_password
from ..devices import phones_holding_work
from ..models import Episode, ReviewStage
from ..policy import policy_of
from ..reviews import (ReviewRefused, approve_stage, contact_check_due, episode_checks,
                       missed_deadlines, open_steps, queue_for, record_contact_check, recorders,
                       return_stage, stages_of, steps_in, submit_stage)
from ..stages import STAGES
from ..web import render, require_role

bp = Blueprint("reviews", __name__)


def _episode(episode_id: int) -> Episode:
    return access.episode_for(db.session(), current_user, episode_id,
                              write=request.method == "POST")


def _stage(stage_id: int) -> ReviewStage:
    stage = db.session().get(ReviewStage, stage_id)
    _episode(stage.episode_id if stage else 0)
    return stage


def _page(episode: Episode, errors: dict | None = None, status: int = 200):
    db_session = db.session()
    return render("reviews/episode.html", episode=episode, stages=stages_of(db_session, episode),
                  STAGES=STAGES, steps_in=steps_in, open_steps=open_steps, recorders=recorders,
                  missed=lambda stage: missed_deadlines(stage, clock.now()), json=json,
                  checks=episode_checks(db_session, episode),
                  check_due=contact_check_due(db_session, episode), errors=errors or {},
                  step_titles={s.key: s.title for s in policy_of(episode.policy_version).steps},
                  status=status)


@bp.get("/reviews")
@require_role("supervisor", "administrator")
def queue():
    stages = queue_for(db.session(), current_user)
    return render("reviews/queue.html", stages=stages, STAGES=STAGES,
                  missed={s.id: missed_deadlines(s, clock.now()) for s in stages},
                  phones=phones_holding_work(db.session(), current_user))


@bp.get("/episodes/<int:episode_id>/review")
@login_required
def episode_review(episode_id: int):
    return _page(_episode(episode_id))


def _act(episode: Episode, form_key: str, action, success: str):
    """Run one review write; on a refusal, show the page again with the messages beside the form
    they belong to (``form_key`` names it). Nothing was changed."""
    try:
        with db.writing() as s:
            action(s)
    except ReviewRefused as refused:
        return _page(episode, {f"{form_key}:{k}": v for k, v in refused.errors.items()},
                     status=422)
    flash(success, "success")
    return redirect(url_for("reviews.episode_review", episode_id=episode.id), 303)


@bp.post("/review-stages/<int:stage_id>/submit")
@login_required
def submit(stage_id: int):
    stage = _stage(stage_id)
    reasons = {k.removeprefix("reason_"): v for k, v in request.form.items()
               if k.startswith("reason_")}
    return _act(stage.episode, str(stage.id),
                lambda s: submit_stage(s, stage, current_user, reasons), "Sent for review.")


@bp.post("/review-stages/<int:stage_id>/return")
@require_role("supervisor", "administrator")
def send_back(stage_id: int):
    stage = _stage(stage_id)
    comments = {k.removeprefix("comment_"): v for k, v in request.form.items()
                if k.startswith("comment_")}
    comment = request.form.get("comment", "")
    return _act(stage.episode, str(stage.id),
                lambda s: return_stage(s, stage, current_user, comment, comments),
                "Sent back with your comments.")


@bp.post("/review-stages/<int:stage_id>/approve")
@require_role("supervisor", "administrator")
def sign_off(stage_id: int):
    stage = _stage(stage_id)
    # Hashing is slow: check the password before taking the write lock.
    password_ok = check_password(current_user, request.form.get("password", ""))
    return _act(stage.episode, str(stage.id),
                lambda s: approve_stage(s, stage, current_user, password_ok), "Approved and signed.")


@bp.post("/episodes/<int:episode_id>/contact-check")
@require_role("supervisor", "administrator")
def contact_check(episode_id: int):
    episode = _episode(episode_id)
    return _act(episode, "check", lambda s: record_contact_check(
        s, episode, current_user, request.form.get("note", "")),
        "Monthly check of the contact log recorded.")


