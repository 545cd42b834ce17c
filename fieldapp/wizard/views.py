"""The step-by-step wizard: opening an episode, its steps one per screen, the contact log,
the located and returned clocks, and "My work". Views parse and render; the rules live in
episodes, checklists and contacts."""
from __future__ import annotations

import json
from datetime import date

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_htmx import make_response as htmx_response
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload

from .. import access, clock, db
from ..checklists import (OUTCOME_LABELS, EntryInvalid, allowed_outcomes, deadline_status,
                          evidence_of, late_entry, next_open_step, record_item, step_views, view_of)
from ..client_ops import OpConflict
from ..contacts import PURPOSES, log_contact, months_without_contact, next_contact_due
from ..episodes import (EpisodeInvalid, mark_located, mark_returned, open_episode,
                        open_episode_of, record_info_event, release_from_custody)
from ..extensions import htmx
from ..models import Episode
from ..policy import policy_of
from ..reviews import contact_checks_due, step_comments_for
from ..web import render
from ..work import work_for
from . import forms

bp = Blueprint("checklists", __name__)


def _episode(episode_id: int) -> Episode:
    # The get first: every wizard page reads the episode's child and policy. Loaded with the
    # episode in one query and held by it, access finds the child in the session, and so does the
    # page's later `episode.child` (the child access loads itself is dropped and selected again).
    episode = db.session().get(Episode, episode_id, options=[joinedload(Episode.child),
                                                             joinedload(Episode.policy_version)])
    # Raises 404 (or 403) exactly as before; when it returns, it returns this same object.
    access.episode_for(db.session(), current_user, episode_id, write=request.method == "POST")
    return episode


def _local(value: str | None):
    return clock.parse_local(value or "")


def _write(form, action) -> tuple[bool, object]:
    """Run a write. On a rule problem, put each message next to its field (or at the top of the
    form) and report (False, None); nothing was saved."""
    try:
        with db.writing() as s:
            return True, action(s)
    except (EpisodeInvalid, EntryInvalid) as invalid:
        for name, message in invalid.errors.items():
            (form[name].errors if name in form else form.form_errors).append(message)
    except OpConflict as conflict:
        form.form_errors.append(str(conflict))
    return False, None


def _default_now(form, *names) -> None:
    if request.method == "GET":
        for name in names:
            form[name].data = form[name].data or clock.now().astimezone(clock.agency_zone()).strftime("%Y-%m-%dT%H:%M")


@bp.route("/children/<int:child_id>/missing", methods=["GET", "POST"])
@login_required
def open_missing(child_id: int):
    child = access.child_for(db.session(), current_user, child_id, write=request.method == "POST")
    existing = open_episode_of(db.session(), child)
    if existing is not None and existing.located_at is None:
        return redirect(url_for("checklists.overview", episode_id=existing.id))
    form = forms.OpenEpisodeForm()
    _default_now(form, "discovered_at")
    if form.validate_on_submit():
        saved, episode = _write(form, lambda s: open_episode(
            s, child, current_user, status=form.status.data,
            discovered_at=_local(form.discovered_at.data),
            discovered_by_role=form.discovered_by_role.data,
            discovered_by_name=form.discovered_by_name.data or "",
            how_missing=form.how_missing.data, last_seen_at=_local(form.last_seen_at.data),
            last_seen_place=form.last_seen_place.data or "", note=form.note.data or ""))
        if saved:
            first = next_open_step(episode)
            return redirect(url_for("checklists.step", episode_id=episode.id,
                                    step_key=first.spec.key), 303)
    return render("checklists/open.html", child=child, form=form,
                  status=422 if form.errors else 200)


@bp.get("/episodes/<int:episode_id>")
@login_required
def overview(episode_id: int):
    episode = _episode(episode_id)
    now = clock.now()
    views = step_views(episode)
    return render("checklists/overview.html", episode=episode, views=views, now=now,
                  policy=policy_of(episode.policy_version), deadline_status=deadline_status,
                  sensitive=access.can_see_sensitive(db.session(), current_user, episode.child),
                  next_search_due=next_contact_due(episode),
                  next_follow_up_due=next_contact_due(episode, "follow_up_le_ncmec"),
                  months_missed=months_without_contact(episode))


def _step_context(episode: Episode, step_key: str, errors=None, values=None):
    view = view_of(episode, step_key)
    if view is None:
        abort(404)
    policy = policy_of(episode.policy_version)
    correcting = request.args.get("correct", type=int) or (values or {}).get("supersedes")
    return dict(
        episode=episode, view=view, policy=policy, now=clock.now(),
        status_text=deadline_status(view, clock.now()),
        outcomes=[(o, OUTCOME_LABELS[o]) for o in allowed_outcomes(episode, view.spec)],
        sensitive=access.can_see_sensitive(db.session(), current_user, episode.child),
        errors=errors or {}, values=values or {}, evidence_of=evidence_of, late_entry=late_entry,
        correcting=correcting, fresh_uuid=forms.submission_id(None),
        review_comments=step_comments_for(db.session(), episode, step_key), json=json,
        done_default=clock.now().astimezone(clock.agency_zone()).strftime("%Y-%m-%dT%H:%M"))


@bp.get("/episodes/<int:episode_id>/steps/<step_key>")
@login_required
def step(episode_id: int, step_key: str):
    episode = _episode(episode_id)
    return render("checklists/step.html", partial="checklists/_step.html",
                  **_step_context(episode, step_key))


@bp.post("/episodes/<int:episode_id>/steps/<step_key>")
@login_required
def record_step(episode_id: int, step_key: str):
    episode = _episode(episode_id)
    # Not _step_context: before the write only the step and the right to see it are needed;
    # the page's wording, outcomes and review comments are built afterwards for what is shown.
    view = view_of(episode, step_key)
    if view is None or (view.spec.sensitive
                        and not access.can_see_sensitive(db.session(), current_user, episode.child)):
        abort(404)
    form = request.form
    try:
        with db.writing() as s:
            record_item(s, episode, step_key, current_user, outcome=form.get("outcome", ""),
                        done_at=_local(form.get("done_at")),
                        recorded_at=forms.device_clock(form.get("recorded_at")),
                        raw_evidence=forms.step_evidence(form, view.spec),
                        reason=form.get("reason", ""),
                        client_uuid=forms.submission_id(form.get("client_uuid")),
                        supersedes_id=form.get("supersedes", type=int))
    except (EntryInvalid, OpConflict) as problem:
        errors = problem.errors if isinstance(problem, EntryInvalid) else {"outcome": str(problem)}
        values = form.to_dict(flat=True)
        values.update({f"ev_{f.name}": form.getlist(f"ev_{f.name}")
                       for f in view.spec.evidence if f.type == "categories"})
        context = _step_context(episode, step_key, errors, values)
        return render("checklists/step.html", partial="checklists/_step.html", status=422, **context)
    upcoming = next_open_step(db.session().get(Episode, episode_id), after=step_key)
    if upcoming is None:
        flash("Every step is recorded.", "success")
        target = url_for("checklists.overview", episode_id=episode_id)
    else:
        target = url_for("checklists.step", episode_id=episode_id, step_key=upcoming.spec.key)
    if htmx and not htmx.boosted:
        if upcoming is None:  # leaving the wizard: a real navigation, not a swap
            return htmx_response("", redirect=target)
        # Swap the next step in place, and put its address in the bar as if we had navigated.
        body, _status, headers = render("checklists/step.html", partial="checklists/_step.html",
                                        **_step_context(episode, upcoming.spec.key))
        response = htmx_response(body, push_url=target)
        response.headers.update(headers)
        return response
    return redirect(target, 303)


@bp.route("/episodes/<int:episode_id>/contacts", methods=["GET", "POST"])
@login_required
def contacts(episode_id: int):
    episode = _episode(episode_id)
    form = forms.ContactForm()
    _default_now(form, "contacted_at")
    if request.method == "GET" and request.args.get("purpose") in PURPOSES:
        form.purpose.data = request.args["purpose"]
    if form.validate_on_submit():
        def action(s):
            log_contact(s, episode, current_user, person=form.person.data or "",
                        relationship=form.relationship.data, method=form.method.data,
                        contacted_at=_local(form.contacted_at.data), reached=form.reached.data or "",
                        learned=form.learned.data or "", purpose=form.purpose.data,
                        client_uuid=forms.submission_id(form.client_uuid.data),
                        recorded_at=forms.device_clock(form.recorded_at.data))
        saved, _ = _write(form, action)
        if saved:
            flash("Contact logged.", "success")
            return redirect(url_for("checklists.contacts", episode_id=episode.id), 303)
    return render("checklists/contacts.html", episode=episode, form=form,
                  next_search_due=next_contact_due(episode),
                  next_follow_up_due=next_contact_due(episode, "follow_up_le_ncmec"),
                  fresh_uuid=forms.submission_id(None), status=422 if form.errors else 200)


def _clock_form(episode_id: int, form_class, template: str, defaults: tuple[str, ...], action,
                success: str):
    """The located / returned / release / information forms share one shape."""
    episode = _episode(episode_id)
    form = form_class()
    _default_now(form, *defaults)
    if form.validate_on_submit() and _write(form, lambda s: action(s, episode, form))[0]:
        flash(success, "success")
        upcoming = next_open_step(db.session().get(Episode, episode_id))
        target = (url_for("checklists.step", episode_id=episode_id, step_key=upcoming.spec.key)
                  if upcoming else url_for("checklists.overview", episode_id=episode_id))
        return redirect(target, 303)
    return render(template, episode=episode, form=form, fresh_uuid=forms.submission_id(None),
                  status=422 if form.errors else 200)


def _located(s, episode, form):
    location = form.unapproved_location()
    mark_located(s, episode, current_user, located_at=_local(form.located_at.data),
                 located_where=form.located_where.data, located_place=form.located_place.data or "",
                 located_by=form.located_by.data or "", status=form.status.data or "",
                 location=location, note=form.note.data or "")


@bp.route("/episodes/<int:episode_id>/located", methods=["GET", "POST"])
@login_required
def located(episode_id: int):
    return _clock_form(episode_id, forms.LocatedForm, "checklists/located.html", ("located_at",),
                       _located, "Located. The return steps have started.")


@bp.route("/episodes/<int:episode_id>/returned", methods=["GET", "POST"])
@login_required
def returned(episode_id: int):
    return _clock_form(
        episode_id, forms.ReturnedForm, "checklists/returned.html", ("returned_at",),
        lambda s, e, f: mark_returned(s, e, current_user, returned_at=_local(f.returned_at.data),
                                      setting=f.setting.data, provider_name=f.provider_name.data or "",
                                      note=f.note.data or ""),
        "Back in care. The remaining return steps are timed from now.")


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        return None


@bp.route("/episodes/<int:episode_id>/release", methods=["GET", "POST"])
@login_required
def release(episode_id: int):
    return _clock_form(
        episode_id, forms.ReleaseForm, "checklists/release.html", ("released_at",),
        lambda s, e, f: release_from_custody(s, e, current_user, released_at=_local(f.released_at.data),
                                             court_order_date=_date(f.court_order_date.data),
                                             note=f.note.data or ""),
        "Custody ended. The episode is closed.")


@bp.route("/episodes/<int:episode_id>/information", methods=["GET", "POST"])
@login_required
def information(episode_id: int):
    return _clock_form(
        episode_id, forms.InfoEventForm, "checklists/information.html", ("info_received_at",),
        lambda s, e, f: record_info_event(s, e, current_user, f.kind.data or "",
                                          _local(f.info_received_at.data)),
        "Recorded. A step to report it has been added.")


@bp.get("/work")
@login_required
def my_work():
    if current_user.role == "auditor":
        abort(404)
    on_call = current_user.role == "on_call"
    children = (db.session().scalars(access.break_glass_candidates_query()).all() if on_call else [])
    return render("checklists/work.html", work=work_for(db.session(), current_user),
                  now=clock.now(), deadline_status=deadline_status, children=children,
                  checks_due=contact_checks_due(db.session(), current_user))
