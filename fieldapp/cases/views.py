"""Caseloads, the child page, status changes, handovers and on-call access."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, or_, select

from .. import access, clock, db
from ..breakglass import GrantRefused, grant_access
from ..episodes import episode_move_problem, latest_episode_of, open_episode_of
from ..caseloads import ReassignmentRefused, acknowledge_handover, pending_handovers
from ..models import Child, Handover, StatusChange
from ..status import (StatusChangeInvalid, change_status,
                      location_awaiting_review, location_needs_reverification,
                      locations_awaiting_review_query, review_location)
from ..web import render, require_role
from ..work import open_steps_of_child
from .forms import ActionForm, BreakGlassForm, LocationReviewForm, StatusForm

bp = Blueprint("cases", __name__)

HOME_BY_ROLE = {
    "caseworker": "checklists.my_work",
    "supervisor": "checklists.my_work",
    "on_call": "checklists.my_work",
    "administrator": "admin.users",
    "auditor": "cases.overview",
}


@bp.get("/")
@login_required
def home():
    return redirect(url_for(HOME_BY_ROLE[current_user.role]))


@bp.get("/caseload")
@require_role("caseworker", "supervisor", "administrator", "on_call")
def caseload():
    query = access.caseload_query(current_user)
    search = request.args.get("q", "").strip()
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(or_(func.lower(Child.first_name).like(pattern),
                                func.lower(Child.last_name).like(pattern),
                                func.lower(Child.case_id).like(pattern)))
    db_session = db.session()
    children = db_session.scalars(query).all()
    reviews = (db_session.scalars(locations_awaiting_review_query(current_user)).all()
               if current_user.role in ("supervisor", "administrator") else [])
    handovers = pending_handovers(db_session, current_user)
    return render("cases/caseload.html", partial="cases/_caseload_list.html",
                  children=children, search=search, reviews=reviews, handovers=handovers,
                  handed_steps={h.id: open_steps_of_child(db_session, h.child_id) for h in handovers},
                  stale=location_needs_reverification, ack_form=ActionForm())


@bp.get("/children/<int:child_id>")
@login_required
def child(child_id: int):
    db_session = db.session()
    child = access.child_for(db_session, current_user, child_id)
    awaiting = location_awaiting_review(child)
    return render("cases/child.html", child=child, episode=latest_episode_of(db_session, child),
                  sensitive=access.can_see_sensitive(db_session, current_user, child),
                  awaiting_review=awaiting, stale=location_needs_reverification(child),
                  review_form=LocationReviewForm() if awaiting else None)


@bp.route("/children/<int:child_id>/status", methods=["GET", "POST"])
@login_required
def change_child_status(child_id: int):
    db_session = db.session()
    child = access.child_for(db_session, current_user, child_id, write=request.method == "POST")
    form = StatusForm()
    if request.method == "GET":
        form.since.data = clock.now().astimezone(clock.agency_zone()).strftime("%Y-%m-%dT%H:%M")
    if not form.validate_on_submit():
        return render("cases/status_form.html", child=child, form=form,
                      status=422 if form.errors else 200)
    episode = open_episode_of(db_session, child)
    detour = episode_move_problem(child.status, form.status.data, episode is not None)
    if detour:
        form.status.errors.append(detour)
        return render("cases/status_form.html", child=child, form=form, status=422)
    location = form.unapproved_location()
    try:
        with db.writing() as s:
            change_status(s, child, current_user, form.status.data,
                          clock.parse_local(form.since.data or ""), form.note.data or "", location)
    except StatusChangeInvalid as invalid:
        for field, message in invalid.errors.items():
            form[field].errors.append(message)
        return render("cases/status_form.html", child=child, form=form, status=422)
    flash("Status recorded.", "success")
    return redirect(url_for("cases.child", child_id=child.id), 303)


@bp.post("/status-changes/<int:change_id>/review")
@require_role("supervisor", "administrator")
def review_unapproved_location(change_id: int):
    db_session = db.session()
    change = db_session.get(StatusChange, change_id)
    child = access.child_for(db_session, current_user, change.child_id if change else 0, write=True)
    form = LocationReviewForm()
    if form.validate_on_submit():
        try:
            with db.writing() as s:
                review_location(s, change, current_user, form.decision.data == "approve",
                                form.note.data or "")
            flash("Decision recorded.", "success")
        except StatusChangeInvalid as invalid:
            flash(" ".join(invalid.errors.values()), "error")
    return redirect(url_for("cases.child", child_id=child.id), 303)


@bp.post("/handovers/<int:handover_id>/acknowledge")
@require_role("caseworker")
def acknowledge(handover_id: int):
    db_session = db.session()
    handover = db_session.get(Handover, handover_id)
    if handover is None or handover.to_user_id != current_user.id:
        abort(404)
    if ActionForm().validate_on_submit():
        try:
            with db.writing() as s:
                acknowledge_handover(s, handover, current_user)
        except ReassignmentRefused as refused:
            flash(str(refused), "error")
    return redirect(url_for("cases.caseload"), 303)


@bp.get("/on-call")
@require_role("on_call")
def on_call():
    children = db.session().scalars(access.break_glass_candidates_query()).all()
    return render("cases/on_call.html", children=children)


@bp.route("/children/<int:child_id>/break-glass", methods=["GET", "POST"])
@require_role("on_call")
def break_glass(child_id: int):
    db_session = db.session()
    child = db_session.get(Child, child_id)
    if child is None or not access.child_has_open_episode(db_session, child):
        abort(404)
    form = BreakGlassForm()
    if form.validate_on_submit():
        try:
            with db.writing() as s:
                grant_access(s, current_user, child, form.reason.data or "")
        except GrantRefused as refused:
            form.reason.errors.append(str(refused))
        else:
            flash("Access granted for this child. It is recorded and reviewed.", "success")
            return redirect(url_for("cases.child", child_id=child.id), 303)
    return render("cases/break_glass.html", child=child, form=form,
                  status=422 if form.errors else 200)


@bp.get("/overview")
@require_role("auditor", "administrator", "supervisor")
def overview():
    """De-identified children by status and placement setting: what an auditor may read."""
    rows = db.session().execute(
        select(Child.status, func.count()).group_by(Child.status).order_by(Child.status)).all()
    return render("cases/overview.html", counts=rows, total=sum(n for _, n in rows))
