"""/api/v1: the session check and the sync batch endpoint."""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError, generate_csrf
from werkzeug.exceptions import HTTPException, InternalServerError, default_exceptions

from .. import clock, db
from ..offline import offline_episodes, offline_pages
from ..sync import BatchInvalid, apply_batch
from ..web import require_role

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# The app's error handlers that answer HTML; under /api they answer JSON instead.
_WRAPPED_ERRORS = (400, 401, 403, 404, 405, 413, 500, CSRFError)


def is_api_request() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def _login_required_answer():
    return jsonify(error="login required"), 401


@bp.before_request
def _require_login():
    if not current_user.is_authenticated:
        return _login_required_answer()
    return None


@bp.get("/session")
def session_info():
    """Who is logged in, a fresh CSRF token for the replay, and the server's clock."""
    return jsonify(user={"id": current_user.id, "username": current_user.username,
                         "display_name": current_user.display_name, "role": current_user.role},
                   csrf_token=generate_csrf(), server_time=clock.now().isoformat())


@bp.get("/offline")
def offline():
    """The pages this phone may cache for offline work, and how long it may keep them."""
    pages = offline_pages(offline_episodes(db.session(), current_user), url_for)
    return jsonify(user_id=current_user.id, pages=pages,
                   offline_hours=current_app.config["OFFLINE_HOURS"])


@bp.post("/sync")
# An auditor's write is refused as a whole (403), as on every form, not op by op as conflicts.
@require_role("caseworker", "supervisor", "on_call", "administrator")
def sync():
    """Apply a phone's outbox; one answer per op, in order (fieldapp.sync)."""
    batch = request.get_json(silent=True)
    if batch is None:
        return jsonify(error="The body must be JSON."), 400
    now = clock.now()
    try:
        with db.writing() as s:
            outcome = apply_batch(s, current_user, batch, now)
    except BatchInvalid as invalid:
        return jsonify(error=str(invalid)), invalid.status
    return jsonify(server_time=now.isoformat(), **outcome)


def _json_error(error: HTTPException):
    if isinstance(error, CSRFError) and not current_user.is_authenticated:
        # An expired session also loses its CSRF token: say what the page must do about it.
        return _login_required_answer()
    messages = {401: "login required", 404: "not found", 413: "request too large"}
    code = error.code or 500
    message = messages.get(code) or (error.description if code == 403 else error.name.lower())
    if isinstance(error, CSRFError):
        message = "CSRF token missing or invalid; get a fresh one from /api/v1/session."
    return jsonify(error=message), code


def _json_under_api(app: Flask, key) -> None:
    """Wrap the app's handler for ``key`` so that it answers JSON under /api and as before
    elsewhere. Routing errors (an unknown /api path) reach only app-level handlers, so a
    blueprint handler would not do."""
    code, cls = (key, default_exceptions[key]) if isinstance(key, int) else (key.code, key)
    previous = app.error_handler_spec.get(None, {}).get(code, {}).get(cls)

    def handler(error):
        if not isinstance(error, HTTPException):
            error = InternalServerError(original_exception=error)
        if is_api_request():
            return _json_error(error)
        return previous(error) if previous else error

    app.register_error_handler(key, handler)


@bp.record_once
def _install(state) -> None:
    for key in _WRAPPED_ERRORS:
        _json_under_api(state.app, key)
