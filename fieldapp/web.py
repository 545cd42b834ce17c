"""Cross-cutting web behaviour: rendering full pages or htmx partials, headers, errors, filters."""
from __future__ import annotations

from datetime import date, datetime
from functools import wraps
from urllib.parse import urlsplit

from flask import Flask, abort, render_template, request
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError
from flask.sessions import SecureCookieSessionInterface as _FlaskSessionInterface

from . import assets, clock, db
from .accounts import load_session_user
from .compression import compress_response
from .extensions import htmx, login_manager
from .vocabulary import PLACEMENT_SETTINGS, ROLES, SEXES, STATUSES

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "connect-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'",
    "object-src 'none'",
))


# Responses that are the same for every user, so they keep their own caching rules: the static
# files, the PWA's worker script and manifest (the worker asks for itself "no-cache"), the
# offline page and the health check.
NO_PERSONAL_DATA = frozenset({"static", "pwa.service_worker", "pwa.manifest", "pwa.offline_page",
                              "health.alive"})


def render(template: str, *, partial: str | None = None, status: int = 200, **context):
    """Render the full page, or only its partial for a real htmx request.

    Boosted navigation and history restores need the whole page, so they get it. Every response
    from here varies on HX-Request, so that no cache hands a partial to a full-page load.
    """
    wants_partial = (partial is not None and bool(htmx) and not htmx.boosted
                     and not htmx.history_restore_request)
    body = render_template(partial if wants_partial else template, **context)
    return body, status, {"Vary": "HX-Request"}


def require_role(*roles: str):
    """Limit a view to logged-in users with one of ``roles``.

    Others get 404, as for a child outside their caseload; an auditor's attempt to write gets 403.
    """
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                writing = request.method not in ("GET", "HEAD", "OPTIONS")
                abort(403 if writing and current_user.role == "auditor" else 404)
            return view(*args, **kwargs)
        return wrapped
    return decorator


def is_safe_next(target: str | None) -> bool:
    """Only same-site paths may be redirected to after login (no scheme, host or '//' tricks)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


class _SessionInterface(_FlaskSessionInterface):
    """Session cookies are Secure whenever the request came over HTTPS (directly or via the proxy)."""

    def get_cookie_secure(self, app):
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure

    def save_session(self, app, session, response):
        # Flask-Login looks at the session after every request, which would add "Vary: Cookie"
        # (and may refresh the cookie) on static files too: then no shared cache could keep them,
        # and a cached file could carry someone's Set-Cookie. Responses without personal data
        # leave the session as it came.
        if request.endpoint in NO_PERSONAL_DATA and not session.modified:
            return
        super().save_session(app, session, response)


def _age(born: date) -> int:
    today = clock.today()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _local(value: datetime | None, fmt: str = "%a %-d %b %Y, %H:%M %Z") -> str:
    if value is None:
        return ""
    return value.astimezone(clock.agency_zone()).strftime(fmt)


def _local_input(value: datetime | None) -> str:
    """The value for an <input type=datetime-local>, in the agency's zone."""
    return _local(value, "%Y-%m-%dT%H:%M") if value else ""


def init_app(app: Flask) -> None:
    app.session_interface = _SessionInterface()
    assets.init_app(app)

    # Registered first, so it runs last (Flask runs these in reverse): it compresses the body
    # that every other hook has finished with.
    @app.after_request
    def _compress(response):
        return compress_response(request, response)

    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"
    login_manager.user_loader(lambda session_id: load_session_user(db.session(), session_id))

    app.jinja_env.filters.update(local=_local, local_input=_local_input, age=_age)
    app.jinja_env.globals.update(STATUSES=STATUSES, PLACEMENT_SETTINGS=PLACEMENT_SETTINGS,
                                 ROLES=ROLES, SEXES=SEXES)

    @app.context_processor
    def _agency():
        return {"agency_name": app.config["AGENCY_NAME"]}

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        # The endpoint first: asking for the user reads the session, which adds "Vary: Cookie",
        # and static files must stay cacheable by anyone.
        if (request.endpoint not in NO_PERSONAL_DATA and current_user.is_authenticated
                and "no-store" not in response.headers.get("Cache-Control", "")):
            # Pages about children must not linger in shared or browser caches. A view may say
            # more (a photo's "private, no-store"), never less.
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(404)
    def _not_found(_error):
        return render("errors/error.html", status=404, title="Not found",
                      message="There is nothing here, or it is not on your caseload.")

    @app.errorhandler(403)
    def _forbidden(error):
        return render("errors/error.html", status=403, title="Not allowed",
                      message=error.description or "Your role cannot do this.")

    @app.errorhandler(CSRFError)
    def _csrf(_error):
        return render("errors/error.html", status=400, title="Form expired",
                      message="This form was open too long or came from elsewhere. Go back, reload "
                              "the page and send it again. Nothing was saved.")

    @app.errorhandler(413)
    def _too_large(_error):
        limit_mb = app.config["MAX_CONTENT_LENGTH"] / (1024 * 1024)
        return render("errors/error.html", status=413, title="File too large",
                      message=f"The file is larger than the {limit_mb:.0f} MB limit. Nothing was saved.")
