"""How long a login lasts: an idle timeout and an absolute one (issue 8, Security 4).

The signed session cookie carries when the login began and when its user was last active, in
epoch seconds of the app's clock. Before each request they are checked against the settings. An
ended session is logged out and the request goes on as anyone's who is not logged in: a page is
redirected to the login form, an htmx request gets ``HX-Redirect`` to it, and ``/api/`` answers
401 JSON (fieldapp.api). The login form then says why the session ended.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, flash, redirect, request, session
from flask_login import logout_user
from flask_htmx.responses import HTMXResponseClientRedirect
from flask_login.utils import login_url

from . import clock
from .extensions import htmx, login_manager
from .web import NO_PERSONAL_DATA

LOGIN_AT = "login_at"
SEEN_AT = "seen_at"
ENDED = "session_ended"  # why the last login ended, until the next one clears the session

# Last-seen is rewritten at most this often, in seconds. A session that changes sends its cookie
# again, so rewriting on every request would re-send it with every page and every swap.
SEEN_RESOLUTION = 60

# The phone's own polling on an open page (static/js/offline.js): who is logged in, and which
# pages to keep for offline work. It must not keep an unattended phone logged in for ever.
BACKGROUND_ENDPOINTS = frozenset({"api.session_info", "api.offline"})

# Requests a script sends for itself say so in Sec-Fetch-Mode; a person's navigation says
# "navigate", and htmx's requests (a tap) carry HX-Request.
_SCRIPT_FETCH_MODES = frozenset({"cors", "no-cors", "same-origin"})


@dataclass(frozen=True)
class Limits:
    idle_seconds: int
    max_seconds: int


# Why a session ended, as the login form tells it. Keys are what ``ending`` returns.
MESSAGES = {
    "idle": "Your session ended after {idle} minutes without activity. Log in again to continue.",
    "absolute": "Your session ended {hours} hours after you logged in. Log in again to continue.",
    "unstamped": "Your session has ended. Log in again to continue.",
}


def limits_from(config) -> Limits:
    return Limits(idle_seconds=config["SESSION_IDLE_MINUTES"] * 60,
                  max_seconds=config["SESSION_MAX_HOURS"] * 3600)


def ending(login_at: object, seen_at: object, now: int, limits: Limits) -> str | None:
    """Why a session must end at ``now`` ("absolute", "idle" or "unstamped"), or None.

    A logged-in session without both stamps predates the timeouts (or was not made by the login
    form): it ends too, rather than living on without limits. A clock that has gone back
    ends nothing.
    """
    if not (isinstance(login_at, int) and isinstance(seen_at, int)):
        return "unstamped"
    if now - login_at >= limits.max_seconds:
        return "absolute"
    if now - seen_at >= limits.idle_seconds:
        return "idle"
    return None


def is_activity(endpoint: str | None, method: str, headers) -> bool:
    """Does this request show a person at work? Only those keep a session alive.

    Navigations, htmx requests and every write (a form, a sync of work recorded on the phone)
    do. The phone's polling and a script's own page fetches (offline.js refreshing the pages it
    keeps) do not.
    """
    if endpoint in BACKGROUND_ENDPOINTS:
        return False
    if method not in ("GET", "HEAD") or headers.get("HX-Request") == "true":
        return True
    return headers.get("Sec-Fetch-Mode") not in _SCRIPT_FETCH_MODES


def start() -> None:
    """Stamp a new login's session. Call it after the session has been cleared for the login."""
    session[LOGIN_AT] = session[SEEN_AT] = _now_seconds()


def _now_seconds() -> int:
    return int(clock.now().timestamp())


def _message(reason: str, config) -> str:
    return MESSAGES[reason].format(idle=config["SESSION_IDLE_MINUTES"],
                                   hours=config["SESSION_MAX_HOURS"])


def _end(reason: str, config) -> None:
    logout_user()
    session.pop(LOGIN_AT, None)
    session.pop(SEEN_AT, None)
    # The CSRF token stays. The page still open holds it, and often the phone's polling, not a
    # person, finds the session over: the person's next form must then reach the login check
    # (and be kept in the outbox by offline.js) rather than be refused as a forged form. The
    # next login starts from an empty session all the same.
    flash(_message(reason, config), "info")
    session[ENDED] = reason


def check_session():
    """Before each request: end a session that has timed out, or note the user's activity."""
    # Static files, the service worker and the offline page are the same for everyone: they
    # must not read the session (that adds "Vary: Cookie") nor count as anyone's activity.
    if request.endpoint in NO_PERSONAL_DATA or "_user_id" not in session:
        return None
    now = _now_seconds()
    limits = limits_from(current_app.config)
    reason = ending(session.get(LOGIN_AT), session.get(SEEN_AT), now, limits)
    if reason:
        _end(reason, current_app.config)
    elif (now - session[SEEN_AT] >= SEEN_RESOLUTION
          and is_activity(request.endpoint, request.method, request.headers)):
        session[SEEN_AT] = now
    return None


def _return_to() -> str | None:
    """Where to come back to after logging in: the page the user was on."""
    if htmx:
        return htmx.current_url  # the page, not the partial or the form's target
    if request.method in ("GET", "HEAD"):
        return request.url
    return request.referrer  # a form's page (Referrer-Policy is same-origin)


def unauthorized():
    """Anyone not logged in (never, or no longer) who asks for a page is sent to log in.

    As flask-login does by default, with two differences: an htmx request gets HX-Redirect, so
    the login form replaces the page rather than landing inside a swapped fragment; and when the
    session has just timed out, the form says that rather than "Please log in".
    """
    if ENDED not in session:  # the login form already says why the session ended
        flash(login_manager.login_message, login_manager.login_message_category)
    target = login_url(login_manager.login_view, next_url=_return_to())
    if htmx:
        # 401, not 200: a page script can tell "not sent, log in" from a swap (offline.js keeps
        # a step or contact form's work in the outbox when it sees it).
        response = HTMXResponseClientRedirect(target, status=401)
        response.vary.add("HX-Request")
        return response
    return redirect(target)


def init_app(app: Flask) -> None:
    app.before_request(check_session)
    login_manager.unauthorized_handler(unauthorized)
