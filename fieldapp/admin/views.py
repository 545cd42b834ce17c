"""Administration: users and teams, reassigning children, importing the roster, the audit log."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select
from wtforms import SelectChoice

from .. import access, db
from ..accounts import (AccountError, assign_team, create_user, deactivate, get_or_create_team,
                        hash_password, password_problem, reactivate, revoke_sessions)
from ..audit import EVENTS_PER_PAGE, EventFilter, detail_lines, find_events
from ..caseloads import ReassignmentRefused, reassign_child
from ..history_import import HistoryInvalid, import_file
from ..models import User
from ..roster import RosterInvalid, import_roster
from ..web import render, require_role
from .forms import HistoryForm, NewUserForm, ReassignForm, RosterForm, TeamForm

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/users")
@require_role("administrator")
def users():
    all_users = db.session().scalars(select(User).order_by(User.role, User.display_name)).all()
    return render("admin/users.html", users=all_users, new_form=NewUserForm(), team_form=TeamForm())


@bp.post("/users")
@require_role("administrator")
def add_user():
    form = NewUserForm()
    password_hash = None
    if form.validate_on_submit():
        names = (form.username.data or "", form.display_name.data or "")
        problem = password_problem(form.password.data, *names)
        if problem:
            form.password.errors.append(problem)  # beside the password, not the username
        else:
            password_hash = hash_password(form.password.data, *names)  # slow: before the write lock
    if password_hash:
        try:
            with db.writing() as s:
                team_name = (form.team.data or "").strip()  # None when the field was not sent
                team = get_or_create_team(s, team_name) if team_name else None
                create_user(s, username=form.username.data, display_name=form.display_name.data,
                            role=form.role.data, password_hash=password_hash, team=team,
                            phone=form.phone.data or None, actor=current_user)
        except AccountError as problem:
            form.username.errors.append(str(problem))
        else:
            flash(f"Added {form.display_name.data}.", "success")
            return redirect(url_for("admin.users"), 303)
    all_users = db.session().scalars(select(User).order_by(User.role, User.display_name)).all()
    return render("admin/users.html", users=all_users, new_form=form, team_form=TeamForm(),
                  status=422)


def _user_or_404(user_id: int) -> User:
    user = db.session().get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.post("/users/<int:user_id>/team")
@require_role("administrator")
def set_team(user_id: int):
    user, form = _user_or_404(user_id), TeamForm()
    if form.validate_on_submit():
        try:
            with db.writing() as s:
                team_name = (form.team.data or "").strip()  # None when the field was not sent
                team = get_or_create_team(s, team_name) if team_name else None
                assign_team(s, user, team, current_user)
            flash(f"{user.display_name}'s team is saved.", "success")
        except AccountError as problem:
            flash(str(problem), "error")
    return redirect(url_for("admin.users"), 303)


# One table of the account actions that are a single button each.
ACCOUNT_ACTIONS = {
    "deactivate": (deactivate, "{name} is deactivated and logged out everywhere."),
    "reactivate": (reactivate, "{name} can log in again."),
    "log-out-everywhere": (revoke_sessions, "{name} is logged out on every device."),
}


@bp.post("/users/<int:user_id>/<action>")
@require_role("administrator")
def account_action(user_id: int, action: str):
    if action not in ACCOUNT_ACTIONS:
        abort(404)
    user = _user_or_404(user_id)
    apply, message = ACCOUNT_ACTIONS[action]
    try:
        with db.writing() as s:
            apply(s, user, current_user)
        flash(message.format(name=user.display_name), "success")
    except AccountError as problem:
        flash(str(problem), "error")
    return redirect(url_for("admin.users"), 303)


@bp.route("/children/<int:child_id>/reassign", methods=["GET", "POST"])
@require_role("administrator")
def reassign(child_id: int):
    db_session = db.session()
    child = access.child_for(db_session, current_user, child_id)
    caseworkers = db_session.scalars(select(User).where(
        User.role == "caseworker", User.active).order_by(User.display_name)).all()
    form = ReassignForm()
    form.caseworker.choices = [
        SelectChoice(u.id, f"{u.display_name} ({u.team.name if u.team else 'no team'})")
        for u in caseworkers]
    if form.validate_on_submit():
        try:
            with db.writing() as s:
                reassign_child(s, child, s.get(User, form.caseworker.data), current_user,
                               form.note.data or "")
        except ReassignmentRefused as refused:
            form.caseworker.errors.append(str(refused))
        else:
            flash(f"{child.full_name} is now on {child.caseworker.display_name}'s caseload.", "success")
            return redirect(url_for("cases.child", child_id=child.id), 303)
    return render("admin/reassign.html", child=child, form=form, status=422 if form.errors else 200)


@bp.route("/roster", methods=["GET", "POST"])
@require_role("administrator")
def roster():
    form = RosterForm()
    if not form.validate_on_submit():
        return render("admin/roster.html", form=form, status=422 if form.errors else 200)
    raw = form.file.data.read()
    try:
        with db.writing() as s:
            report = import_roster(s, raw, current_user)
    except RosterInvalid as invalid:
        return render("admin/roster.html", form=form, problems=invalid.problems, status=422)
    return render("admin/roster.html", form=RosterForm(formdata=None), report=report)


@bp.route("/history", methods=["GET", "POST"])
@require_role("administrator")
def import_history():
    """Upload a history file (docs/import-format.md); all or nothing, like the CLI."""
    form = HistoryForm()
    if not form.validate_on_submit():
        return render("admin/history.html", form=form, status=422 if form.errors else 200)
    try:
        with db.writing() as s:
            report = import_file(s, form.file.data.read(), current_user)
    except HistoryInvalid as invalid:
        return render("admin/history.html", form=form, problems=invalid.problems[:PROBLEMS_SHOWN],
                      problem_count=len(invalid.problems), status=422)
    return render("admin/history.html", form=HistoryForm(formdata=None), report=report)


PROBLEMS_SHOWN = 500  # a page of problems is enough to fix a file; the CLI prints them all


@bp.get("/audit")
@require_role("administrator")
def audit():
    args = request.args
    wanted = EventFilter(child_id=args.get("child", type=int), actor_id=args.get("user", type=int),
                         start=args.get("from", type=date.fromisoformat),
                         end=args.get("to", type=date.fromisoformat))
    page = max(args.get("page", 1, type=int), 1)
    db_session = db.session()
    events, more = find_events(db_session, wanted, page)
    users = db_session.scalars(select(User).order_by(User.display_name)).all()
    return render("admin/audit.html", wanted=wanted, page=page, more=more, users=users,
                  per_page=EVENTS_PER_PAGE, events=[(event, detail_lines(event.details)) for event in events])
