"""How long a login lasts (issue 8, Security 4): the idle and absolute timeouts, what counts as
activity, how each kind of request is answered once a session has ended, and the session cookie's
rotation at login."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from helpers import NOW, PASSWORD, IsolatedClient, fresh
from fieldapp import create_app, session_policy
from fieldapp.models import SearchContact
from fieldapp.settings import SETTINGS, SettingsError, from_environment

IDLE_ENDED = "Your session ended after 30 minutes without activity. Log in again to continue."
MAX_ENDED = "Your session ended 12 hours after you logged in. Log in again to continue."
PLEASE_LOG_IN = "Please log in to continue."
# What offline.js's fetches say about themselves (a script's request, not a navigation).
SCRIPT_FETCH = {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}
NAVIGATION = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


def default(name: str):
    return next(s.default for s in SETTINGS if s.name == name)


@pytest.fixture
def timeouts(app):
    """The shipped timeouts (conftest lifts them for tests that move the clock by days)."""
    app.config.update(SESSION_IDLE_MINUTES=default("FIELDAPP_SESSION_IDLE_MINUTES"),
                      SESSION_MAX_HOURS=default("FIELDAPP_SESSION_MAX_HOURS"))
    return app.config


def login_path_and_next(location: str) -> tuple[str, list[str]]:
    parts = urlsplit(location)
    return parts.path, parse_qs(parts.query).get("next", [])


def set_cookie_headers(response) -> list[str]:
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]


def flash_text(client) -> str:
    return client.get("/login").text


def test_the_defaults_are_half_an_hour_idle_and_a_twelve_hour_shift():
    values = from_environment({})
    assert values["SESSION_IDLE_MINUTES"] == 30
    assert values["SESSION_MAX_HOURS"] == 12
    values = from_environment({"FIELDAPP_SESSION_IDLE_MINUTES": "15",
                               "FIELDAPP_SESSION_MAX_HOURS": "10"})
    assert (values["SESSION_IDLE_MINUTES"], values["SESSION_MAX_HOURS"]) == (15, 10)


@pytest.mark.parametrize("key", ["SESSION_IDLE_MINUTES", "SESSION_MAX_HOURS"])
@pytest.mark.parametrize("value", [0, -5])
def test_a_timeout_that_would_end_every_session_at_once_is_refused_at_start(app_config, key, value):
    with pytest.raises(SettingsError, match=f"FIELDAPP_{key} must be a positive number"):
        create_app(dict(app_config, **{key: value}))


def test_login_stamps_the_session_with_the_apps_clock(client, world, login, timeouts):
    login(world.cw_a)
    with client.session_transaction() as session:
        stamp = int(NOW.timestamp())
        assert session[session_policy.LOGIN_AT] == stamp
        assert session[session_policy.SEEN_AT] == stamp


def test_a_session_idle_for_the_limit_ends_and_the_login_form_says_why(client, world, login,
                                                                      clock, timeouts):
    login(world.cw_a)
    clock.advance(minutes=29, seconds=59)
    assert "Alice Avery" in client.get("/caseload").text  # just inside: and it counts as activity
    clock.advance(minutes=29, seconds=59)
    assert "Alice Avery" in client.get("/caseload").text  # an hour on, but never 30 min idle

    clock.advance(minutes=30)
    ended = client.get(f"/children/{world.child_a.id}")
    assert ended.status_code == 302
    assert login_path_and_next(ended.headers["Location"]) == (
        "/login", [f"/children/{world.child_a.id}"])
    form = client.get(ended.headers["Location"])
    assert IDLE_ENDED in form.text
    assert PLEASE_LOG_IN not in form.text  # one message, the one that says why
    assert "Alice Avery" not in form.text
    # The session is gone, not just refused once: back to the right time, it stays logged out.
    clock.set(NOW)
    assert client.get("/caseload").status_code == 302


def test_the_idle_limit_follows_the_setting(app, client, world, login, clock, timeouts):
    app.config["SESSION_IDLE_MINUTES"] = 5
    login(world.cw_a)
    clock.advance(minutes=5)
    assert client.get("/caseload").status_code == 302
    assert ("Your session ended after 5 minutes without activity."
            in client.get("/login").text)


def test_a_copy_of_the_cookie_ends_with_the_session(app, client, world, login, clock, timeouts):
    login(world.cw_a)
    copy = app.test_client()
    copy.set_cookie("session", client.get_cookie("session").value)
    clock.advance(minutes=30)
    assert copy.get("/caseload").status_code == 302
    assert client.get("/caseload").status_code == 302


def test_an_active_session_still_ends_at_the_absolute_limit(client, world, login, clock, timeouts):
    login(world.cw_a)
    for _ in range(12 * 3 - 1):  # a request every 20 minutes, up to 11 h 40 min
        clock.advance(minutes=20)
        assert client.get("/caseload", headers=NAVIGATION).status_code == 200
    clock.advance(minutes=19, seconds=59)
    assert client.get("/caseload").status_code == 200
    clock.advance(seconds=1)  # 12 hours to the second after the login
    ended = client.get("/caseload")
    assert ended.status_code == 302
    assert login_path_and_next(ended.headers["Location"]) == ("/login", ["/caseload"])
    page = client.get("/login")
    assert MAX_ENDED in page.text and IDLE_ENDED not in page.text

    # A new login starts a new shift.
    login(world.cw_a)
    assert "Alice Avery" in client.get("/caseload").text


def test_the_phones_polling_does_not_keep_a_session_alive(client, world, login, clock, timeouts):
    login(world.cw_a)
    for _ in range(5):  # offline.js checks in every five minutes while a page is open
        clock.advance(minutes=5)
        assert client.get("/api/v1/session").status_code == 200
        assert client.get("/api/v1/offline").status_code == 200
        # ...and refreshes the pages it keeps, with fetch(): a script's request.
        assert client.get("/caseload", headers=SCRIPT_FETCH).status_code == 200
    clock.advance(minutes=5)  # 30 minutes after the person last did anything
    response = client.get("/api/v1/session")
    assert response.status_code == 401
    assert response.get_json() == {"error": "login required"}
    assert "Location" not in response.headers
    # The next page the person opens says why they must log in again.
    bounced = client.get("/caseload")
    assert bounced.status_code == 302
    assert IDLE_ENDED in client.get(bounced.headers["Location"]).text


@pytest.mark.parametrize("how", ["navigation", "htmx", "form post", "sync"])
def test_what_a_person_does_keeps_the_session_alive(client, world, login, clock, timeouts, how,
                                                    make_episode):
    episode = make_episode(world.child_a, world.cw_a)
    login(world.cw_a)
    for _ in range(3):
        clock.advance(minutes=20)
        if how == "navigation":
            response = client.get("/caseload", headers=NAVIGATION)
        elif how == "htmx":
            response = client.get("/caseload", headers=dict(SCRIPT_FETCH, **{"HX-Request": "true"}))
        elif how == "form post":
            response = client.post(f"/episodes/{episode.id}/contacts", data={}, headers=SCRIPT_FETCH)
        else:
            response = client.post("/api/v1/sync", json={"ops": [], "held": 0},
                                   headers=SCRIPT_FETCH)
        assert response.status_code < 500 and response.status_code not in (302, 401), \
            response.status_code
    assert client.get("/api/v1/session").status_code == 200  # an hour on, still logged in


def test_last_seen_is_rewritten_at_most_once_a_minute(client, world, login, clock, timeouts):
    login(world.cw_a)
    client.get("/caseload")  # the first page adds the session's CSRF token
    before = client.get_cookie("session").value
    clock.advance(seconds=59)
    quiet = client.get("/caseload")
    assert quiet.status_code == 200
    assert set_cookie_headers(quiet) == []  # nothing changed: the cookie is not sent again
    assert client.get_cookie("session").value == before

    clock.advance(seconds=1)
    noted = client.get("/caseload")
    assert len(set_cookie_headers(noted)) == 1
    with client.session_transaction() as session:
        assert session[session_policy.SEEN_AT] == int(NOW.timestamp()) + 60
        assert session[session_policy.LOGIN_AT] == int(NOW.timestamp())

    clock.advance(minutes=5)
    background = client.get("/api/v1/session")
    assert background.status_code == 200 and set_cookie_headers(background) == []


def test_an_ended_session_gets_401_json_from_the_sync_api_and_nothing_is_stored(
        client, world, login, clock, timeouts, make_episode):
    episode = make_episode(world.child_a, world.cw_a)
    login(world.cw_a)
    clock.advance(minutes=31)
    op = {"uuid": "5b0f6f58-8a77-4a55-9d43-7c0f2b9a1d01", "kind": "search_contact",
          "episode_id": episode.id, "recorded_at": (NOW + timedelta(minutes=25)).isoformat(),
          "fields": {"purpose": "search", "person": "Aunt May", "relationship": "relative",
                     "method": "phone", "contacted_at": (NOW + timedelta(minutes=20)).isoformat(),
                     "reached": "reached", "learned": "Saw her at the mall"}}
    response = client.post("/api/v1/sync", json={"ops": [op], "held": 1,
                                                 "device_time": clock.now().isoformat()})
    assert response.status_code == 401
    assert response.get_json() == {"error": "login required"}
    assert fresh().scalar(select(func.count()).select_from(SearchContact)) == 0


def test_an_htmx_request_after_the_end_is_sent_to_log_in_as_a_whole_page(
        htmx_client, world, login, clock, timeouts):
    login(world.cw_a, target=htmx_client)
    clock.advance(minutes=30)
    page = f"http://localhost/children/{world.child_a.id}"
    response = htmx_client.get("/caseload?q=Ali", headers={"HX-Current-URL": page})
    assert response.status_code == 401
    assert "Location" not in response.headers  # not followed inside the XHR and swapped in
    assert response.text == ""
    assert login_path_and_next(response.headers["HX-Redirect"]) == (
        "/login", [f"/children/{world.child_a.id}"])
    assert "HX-Request" in response.headers["Vary"]
    assert IDLE_ENDED in htmx_client.get("/login").text


def test_an_htmx_request_of_someone_never_logged_in_is_redirected_too(htmx_client, world):
    response = htmx_client.post(f"/children/{world.child_a.id}/status",
                                headers={"HX-Current-URL": "http://localhost/caseload"})
    assert response.status_code == 401
    assert login_path_and_next(response.headers["HX-Redirect"]) == ("/login", ["/caseload"])
    assert PLEASE_LOG_IN in htmx_client.get("/login").text


def test_a_plain_form_post_after_the_end_returns_to_the_forms_page(client, world, login, clock,
                                                                   timeouts):
    login(world.cw_a)
    clock.advance(hours=1)
    form_page = f"http://localhost/children/{world.child_a.id}/status"
    response = client.post(f"/children/{world.child_a.id}/status",
                           data={"status": "released_from_custody", "since": "2026-03-02T13:30",
                                 "note": "x"}, headers={"Referer": form_page})
    assert response.status_code == 302
    assert login_path_and_next(response.headers["Location"]) == (
        "/login", [f"/children/{world.child_a.id}/status"])
    assert IDLE_ENDED in client.get("/login").text


@pytest.mark.parametrize("path", ["/sw.js", "/manifest.webmanifest", "/offline",
                                  "/static/js/offline.js"])
def test_static_files_and_the_worker_neither_end_nor_extend_a_session(client, world, login,
                                                                      clock, timeouts, path):
    login(world.cw_a)
    clock.advance(minutes=31)
    response = client.get(path)
    assert response.status_code == 200
    assert set_cookie_headers(response) == []  # the session was not touched
    assert "Cookie" not in response.headers.get("Vary", "")
    with client.session_transaction() as session:
        assert "_user_id" in session  # still there, for the next page to end
    assert client.get("/caseload").status_code == 302
    assert IDLE_ENDED in client.get("/login").text


def test_a_logged_in_session_without_stamps_is_ended(client, world, login, timeouts):
    login(world.cw_a)
    with client.session_transaction() as session:  # as a cookie from before the timeouts
        del session[session_policy.LOGIN_AT]
    assert client.get("/caseload").status_code == 302
    assert "Your session has ended. Log in again to continue." in client.get("/login").text


def test_a_clock_set_back_ends_nothing(client, world, login, clock, timeouts):
    login(world.cw_a)
    clock.set(NOW - timedelta(hours=3))
    assert client.get("/caseload").status_code == 200


def test_an_anonymous_visitor_is_not_told_a_session_ended(client, world, timeouts):
    page = client.get("/login")
    assert "Your session" not in page.text
    assert client.get("/caseload").status_code == 302
    assert PLEASE_LOG_IN in client.get("/login").text


# --- the policy's rules, without a request ---------------------------------------------------

LIMITS = session_policy.Limits(idle_seconds=1800, max_seconds=12 * 3600)


@pytest.mark.parametrize(("login_at", "seen_at", "now", "reason"), [
    (0, 0, 1799, None),
    (0, 0, 1800, "idle"),
    (0, 40_000, 41_799, None),
    (0, 43_000, 43_199, None),
    (0, 43_199, 43_200, "absolute"),  # the absolute limit wins over recent activity
    (0, 0, 43_200, "absolute"),
    (None, 0, 1, "unstamped"),
    (0, "0", 1, "unstamped"),
    (1000, 1000, 0, None),  # the clock went back
])
def test_ending(login_at, seen_at, now, reason):
    assert session_policy.ending(login_at, seen_at, now, LIMITS) == reason


@pytest.mark.parametrize(("endpoint", "method", "headers", "active"), [
    ("cases.caseload", "GET", {}, True),  # no Sec-Fetch headers: an old browser, a person
    ("cases.caseload", "GET", NAVIGATION, True),
    ("cases.caseload", "GET", dict(SCRIPT_FETCH, **{"HX-Request": "true"}), True),
    ("cases.caseload", "GET", SCRIPT_FETCH, False),
    ("cases.caseload", "POST", SCRIPT_FETCH, True),
    ("api.sync", "POST", SCRIPT_FETCH, True),
    ("api.session_info", "GET", {}, False),
    ("api.offline", "GET", NAVIGATION, False),
])
def test_is_activity(endpoint, method, headers, active):
    assert session_policy.is_activity(endpoint, method, headers) is active


# --- rotation at login -----------------------------------------------------------------------

@pytest.fixture
def csrf_app(app_config):
    other = create_app(dict(app_config, WTF_CSRF_ENABLED=True,
                            SESSION_IDLE_MINUTES=default("FIELDAPP_SESSION_IDLE_MINUTES"),
                            SESSION_MAX_HOURS=default("FIELDAPP_SESSION_MAX_HOURS")))
    other.test_client_class = IsolatedClient
    yield other
    other.extensions["fieldapp.engine"].dispose()


def token_of(page_text: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page_text).group(1)


def test_the_session_cookie_changes_at_login_and_the_old_one_stays_anonymous(csrf_app, world):
    client = csrf_app.test_client()
    token = token_of(client.get("/login").text)
    before = client.get_cookie("session").value  # the anonymous session, holding the form's token

    response = client.post("/login", data={"username": "cw.a", "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 302
    after = client.get_cookie("session").value
    assert after != before
    assert "Alice Avery" in client.get("/caseload").text

    # Whoever held the cookie from before the login (planted, or read off a shared phone) holds
    # an anonymous session, and its token no longer matches the logged-in one's.
    old = csrf_app.test_client()
    old.set_cookie("session", before)
    assert old.get("/caseload").status_code == 302
    refused = client.post("/logout", data={"csrf_token": token})
    assert refused.status_code == 400
    assert "Alice Avery" in client.get("/caseload").text


def test_each_login_gets_its_own_cookie(client, world, login, clock, timeouts):
    login(world.cw_a)
    first = client.get_cookie("session").value
    client.post("/logout")
    clock.advance(seconds=1)
    login(world.cw_a)
    assert client.get_cookie("session").value not in (first, None)


def test_a_form_sent_after_the_polling_found_the_session_over_is_asked_to_log_in(
        csrf_app, world, clock, make_episode):
    """Not refused as a forged form: the page's token still holds, so htmx gets 401 and
    HX-Redirect, and offline.js keeps a step or a contact in the outbox."""
    episode = make_episode(world.child_a, world.cw_a)
    client = csrf_app.test_client()
    token = token_of(client.get("/login").text)
    client.post("/login", data={"username": "cw.a", "password": PASSWORD, "csrf_token": token})
    page_token = token_of(client.get(f"/episodes/{episode.id}/contacts").text)

    clock.advance(minutes=30)
    assert client.get("/api/v1/session").status_code == 401  # the phone's poll ends it
    response = client.post(f"/episodes/{episode.id}/contacts",
                           headers={"HX-Request": "true", "X-CSRFToken": page_token,
                                    "HX-Current-URL": f"http://localhost/episodes/{episode.id}"},
                           data={"purpose": "search", "person": "Dana Reyes",
                                 "relationship": "relative", "method": "phone",
                                 "contacted_at": "2026-03-02T13:40", "reached": "reached",
                                 "learned": "Nothing new", "client_uuid": str(uuid.uuid4())})
    assert response.status_code == 401
    assert login_path_and_next(response.headers["HX-Redirect"]) == (
        "/login", [f"/episodes/{episode.id}"])
    assert fresh().scalar(select(func.count()).select_from(SearchContact)) == 0
    page = client.get("/login").text
    assert IDLE_ENDED in page and PLEASE_LOG_IN not in page
