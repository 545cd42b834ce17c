"""Logging in and out."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from .. import db, session_policy, throttle
from ..accounts import check_password, find_user, normalise_username, revoke_sessions
from ..audit import record_event
from ..web import is_safe_next, render
from .forms import LoginForm

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        return render("auth/login.html", form=form, status=422 if form.errors else 200)
    username_key = normalise_username(form.username.data)
    address = request.remote_addr or "unknown"
    db_session = db.session()
    if throttle.is_throttled(db_session, username_key, address):
        minutes = current_app.config["LOGIN_THROTTLE_MINUTES"]
        form.password.errors.append(f"Too many failed attempts. Wait {minutes} minutes and try "
                                    "again, or ask an administrator to check your account.")
        return render("auth/login.html", form=form, status=429)
    user = find_user(db_session, username_key)
    # Hashing is slow: do it before taking the write lock.
    valid = check_password(user, form.password.data) and user.active
    with db.writing() as s:
        if not valid:
            throttle.record_failure(s, username_key, address)
            record_event(s, None, "auth.login_failed", "user", user.id if user else None,
                         changes={"username": username_key, "address": address})
        else:
            throttle.clear_account(s, username_key)
            record_event(s, user, "auth.login", "user", user.id, changes={"address": address})
    if not valid:
        form.password.errors.append("That username and password do not match an active account.")
        return render("auth/login.html", form=form, status=401)
    # A fresh session at login: nothing from before it carries over, and the cookie the
    # browser held before (perhaps planted) is not the one that is logged in.
    session.clear()
    login_user(user)
    session_policy.start()
    target = form.next.data
    return redirect(target if is_safe_next(target) else url_for("cases.home"))


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"), 303)


@bp.post("/account/log-out-everywhere")
@login_required
def log_out_everywhere():
    with db.writing() as s:
        user = s.merge(current_user._get_current_object())
        revoke_sessions(s, user, user)
    logout_user()
    flash("You are logged out on every device.", "info")
    return redirect(url_for("auth.login"), 303)
