"""Logging in and out: redirects, failures, throttling, cookies, revocation and CSRF."""
from __future__ import annotations

import json
import re
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import url_for
from sqlalchemy import func, select, update

from helpers import NOW, PASSWORD, IsolatedClient, fresh
from fieldapp import create_app, db
from fieldapp.accounts import revoke_sessions
from fieldapp.cases.views import HOME_BY_ROLE
from fieldapp.models import AuditEvent, Child, LoginFailure, SearchContact, StatusChange, User
from fieldapp.vocabulary import ROLES

NO_MATCH = "That username and password do not match an active account."
THROTTLED = "Too many failed attempts."


@contextmanager
def another_app(app_config, **overrides):
    """A second app instance on the same database (and clock), as a second server worker."""
    other = create_app(dict(app_config, **overrides))
    other.test_client_class = IsolatedClient
    try:
        yield other
    finally:
        other.extensions["fieldapp.engine"].dispose()


def failures(kind: str) -> list[tuple[str, object]]:
    return fresh().execute(select(LoginFailure.key, LoginFailure.failed_at)
                           .where(LoginFailure.kind == kind).order_by(LoginFailure.id)).all()


def events(action: str) -> list[AuditEvent]:
    return fresh().scalars(select(AuditEvent).where(AuditEvent.action == action)
                           .order_by(AuditEvent.id)).all()


def post_login(client, username, password, **kwargs):
    return client.post("/login", data={"username": username, "password": password}, **kwargs)


def csrf_token(page_text: str) -> str:
    match = re.search(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"', page_text)
    assert match, "the page carries no CSRF token field"
    return match.group(1)


def session_cookie_attributes(response) -> set[str]:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]
    assert len(headers) == 1, response.headers.getlist("Set-Cookie")
    return {part.strip().lower() for part in headers[0].split(";")[1:]}


def assert_sent_to_login(response, next_path: str | None = None):
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    if next_path is not None:
        assert parse_qs(location.query)["next"] == [next_path]


# --- Logging in ------------------------------------------------------------------------------

def home_of(app, user) -> str:
    """The path of the start page for the user's role."""
    with app.test_request_context():
        return url_for(HOME_BY_ROLE[user.role])


@pytest.mark.parametrize("who", ["cw_a", "sup_a", "oncall", "admin", "auditor"])
def test_login_lands_on_the_roles_home(app, client, world, login, who):
    user = getattr(world, who)
    response = login(user)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"

    page = client.get("/", follow_redirects=True)
    assert page.status_code == 200
    assert page.request.path == home_of(app, user)
    assert "<h1>Log in</h1>" not in page.text
    assert f"{user.display_name}, {ROLES[user.role]}" in page.text  # the footer: who is logged in

    [event] = events("auth.login")
    assert event.actor_id == user.id and event.entity_id == str(user.id)
    assert event.at == NOW
    assert json.loads(event.details) == {"address": "127.0.0.1"}
    assert failures("account") == []


def test_wrong_password_is_refused_and_recorded(client, world):
    response = post_login(client, "cw.a", "not the password at all")
    assert response.status_code == 401
    assert "<h1>Log in</h1>" in response.text
    assert NO_MATCH in response.text
    assert 'value="cw.a"' in response.text  # the username is kept, the password is not
    assert "not the password at all" not in response.text
    assert_sent_to_login(client.get("/caseload"), "/caseload")

    assert failures("account") == [("cw.a", NOW)]
    assert failures("address") == [("127.0.0.1", NOW)]
    [event] = events("auth.login_failed")
    assert event.actor_id is None
    assert (event.entity, event.entity_id) == ("user", str(world.cw_a.id))
    assert json.loads(event.details) == {"username": "cw.a", "address": "127.0.0.1"}
    assert events("auth.login") == []


def test_unknown_username_gets_the_same_answer_as_a_wrong_password(client, world):
    response = post_login(client, "nobody.here", PASSWORD)
    assert response.status_code == 401
    assert NO_MATCH in response.text
    assert failures("account") == [("nobody.here", NOW)]
    [event] = events("auth.login_failed")
    assert event.entity_id is None
    assert json.loads(event.details)["username"] == "nobody.here"


def test_an_empty_form_is_refused_without_counting_a_failure(client, world):
    response = post_login(client, "", "")
    assert response.status_code == 422
    assert "This field is required." in response.text
    assert failures("account") == [] and events("auth.login_failed") == []


def test_username_is_case_insensitive(client, world):
    response = post_login(client, "  CW.A ", PASSWORD)
    assert response.status_code == 302
    page = client.get("/caseload")
    assert page.status_code == 200
    assert "Alice Avery" in page.text and "Bobby Brook" not in page.text
    [event] = events("auth.login")
    assert event.actor_id == world.cw_a.id


def test_failures_under_any_capitalisation_count_against_one_account(client, world):
    for username in ("CW.A", "Cw.a", "cw.A"):
        assert post_login(client, username, "wrong password!").status_code == 401
    assert [key for key, _ in failures("account")] == ["cw.a"] * 3


# --- Throttling ------------------------------------------------------------------------------

def test_account_is_throttled_after_too_many_failures(app, client, world):
    limit = app.config["LOGIN_MAX_FAILURES"]
    minutes = app.config["LOGIN_THROTTLE_MINUTES"]
    for _ in range(limit):
        assert post_login(client, "cw.a", "wrong password!").status_code == 401

    refused = post_login(client, "cw.a", PASSWORD)
    assert refused.status_code == 429
    assert THROTTLED in refused.text
    assert f"Wait {minutes} minutes" in refused.text
    assert NO_MATCH not in refused.text
    assert_sent_to_login(client.get("/caseload"))
    assert len(failures("account")) == limit  # a refused attempt is not counted again
    assert events("auth.login") == []

    # Another account from the same address is not affected.
    assert post_login(client, "cw.a2", PASSWORD).status_code == 302


def test_account_throttle_lifts_when_the_window_has_passed(app, client, clock, world):
    limit = app.config["LOGIN_MAX_FAILURES"]
    minutes = app.config["LOGIN_THROTTLE_MINUTES"]
    for _ in range(limit):
        post_login(client, "cw.a", "wrong password!")

    clock.advance(minutes=minutes - 1)
    assert post_login(client, "cw.a", PASSWORD).status_code == 429

    clock.advance(minutes=2)
    response = post_login(client, "cw.a", PASSWORD)
    assert response.status_code == 302
    assert "Alice Avery" in client.get("/caseload").text
    assert failures("account") == []  # a successful login clears the account's count
    assert len(failures("address")) == limit


def test_address_is_throttled_across_usernames(app, client, world):
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 3
    for name in ("guess.one", "guess.two", "guess.three"):
        assert post_login(client, name, "wrong password!").status_code == 401

    refused = post_login(client, "cw.a", PASSWORD)
    assert refused.status_code == 429
    assert THROTTLED in refused.text
    assert [key for key, _ in failures("address")] == ["127.0.0.1"] * 3

    elsewhere = post_login(client, "cw.a", PASSWORD, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert elsewhere.status_code == 302


def test_forwarded_for_is_ignored_without_trusted_proxies(app, client, world):
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 3
    for i in range(3):
        post_login(client, f"guess.{i}", "wrong password!",
                   headers={"X-Forwarded-For": f"203.0.113.{i}"})
    assert [key for key, _ in failures("address")] == ["127.0.0.1"] * 3
    refused = post_login(client, "cw.a", PASSWORD, headers={"X-Forwarded-For": "203.0.113.99"})
    assert refused.status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(app_config, world):
    with another_app(app_config, TRUSTED_PROXIES=1, LOGIN_MAX_FAILURES_PER_ADDRESS=3) as proxied:
        client = proxied.test_client()
        # The proxy appends the real client; anything the client put before it is not believed.
        for i in range(3):
            response = post_login(client, f"guess.{i}", "wrong password!",
                                  headers={"X-Forwarded-For": f"10.9.9.{i}, 203.0.113.9"})
            assert response.status_code == 401
        assert [key for key, _ in failures("address")] == ["203.0.113.9"] * 3

        refused = post_login(client, "cw.a", PASSWORD,
                             headers={"X-Forwarded-For": "10.1.1.1, 203.0.113.9"})
        assert refused.status_code == 429
        assert THROTTLED in refused.text

        other = proxied.test_client()
        allowed = post_login(other, "cw.a", PASSWORD, headers={"X-Forwarded-For": "198.51.100.20"})
        assert allowed.status_code == 302
        [event] = events("auth.login")
        assert json.loads(event.details) == {"address": "198.51.100.20"}


def test_throttle_counts_live_in_the_database(app, app_config, client, clock, world):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        post_login(client, "cw.a", "wrong password!")

    with another_app(app_config) as second_worker:
        other = second_worker.test_client()
        refused = post_login(other, "cw.a", PASSWORD)
        assert refused.status_code == 429
        assert THROTTLED in refused.text

        clock.advance(minutes=app.config["LOGIN_THROTTLE_MINUTES"] + 1)
        assert post_login(other, "cw.a", PASSWORD).status_code == 302
    # The second worker's success cleared the count for the first worker too.
    assert failures("account") == []
    assert post_login(client, "cw.a", PASSWORD).status_code == 302


def test_failures_older_than_a_day_are_dropped(app, client, clock, world):
    post_login(client, "cw.a", "wrong password!")
    clock.advance(days=1, minutes=1)
    post_login(client, "cw.a2", "wrong password!")
    assert [key for key, _ in failures("account")] == ["cw.a2"]


# --- Where a login goes next -----------------------------------------------------------------

@pytest.mark.parametrize("target", [
    "https://evil.example/",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "javascript:alert(document.cookie)",
    "http:/evil.example",
    "",
])
def test_next_off_site_goes_home_instead(app, client, world, target):
    response = client.post("/login", data={"username": "cw.a", "password": PASSWORD,
                                           "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert client.get("/", follow_redirects=True).request.path == home_of(app, world.cw_a)


@pytest.mark.parametrize("target", ["/caseload", "/caseload?q=Alice"])
def test_next_on_site_is_honoured(client, world, target):
    response = client.post("/login", data={"username": "cw.a", "password": PASSWORD,
                                           "next": target})
    assert response.headers["Location"] == target


def test_login_required_page_returns_after_login(client, world):
    path = f"/children/{world.child_a.id}"
    bounced = client.get(path)
    assert_sent_to_login(bounced, path)

    form = client.get(bounced.headers["Location"])
    assert "Please log in to continue." in form.text
    assert f'value="{path}"' in form.text  # carried in the form's hidden field

    response = client.post(bounced.headers["Location"],
                           data={"username": "cw.a", "password": PASSWORD, "next": path})
    assert response.headers["Location"] == path
    page = client.get(path)
    assert page.status_code == 200 and "Alice Avery" in page.text


# --- Cookies ---------------------------------------------------------------------------------

def test_session_cookie_is_httponly_and_lax_over_http(client, world):
    attributes = session_cookie_attributes(post_login(client, "cw.a", PASSWORD))
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "secure" not in attributes


def test_session_cookie_is_secure_over_https(client, world):
    response = post_login(client, "cw.a", PASSWORD, base_url="https://localhost")
    attributes = session_cookie_attributes(response)
    assert {"secure", "httponly", "samesite=lax"} <= attributes
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_session_cookie_is_secure_when_the_trusted_proxy_says_https(app_config, world):
    with another_app(app_config, TRUSTED_PROXIES=1) as proxied:
        response = post_login(proxied.test_client(), "cw.a", PASSWORD,
                              headers={"X-Forwarded-Proto": "https"})
        assert "secure" in session_cookie_attributes(response)


def test_forwarded_proto_is_not_believed_without_a_trusted_proxy(client, world):
    response = post_login(client, "cw.a", PASSWORD, headers={"X-Forwarded-Proto": "https"})
    assert "secure" not in session_cookie_attributes(response)


def test_login_starts_a_fresh_session(client, world):
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    post_login(client, "cw.a", PASSWORD)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"] == f"{world.cw_a.id}:0"


# --- Ending sessions -------------------------------------------------------------------------

def test_logout(client, world):
    post_login(client, "cw.a", PASSWORD)
    assert client.get("/logout").status_code == 405  # a link or an image cannot log anyone out

    response = client.post("/logout")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    page = client.get("/login")
    assert "You are logged out." in page.text
    assert "Log out" not in page.text
    assert_sent_to_login(client.get("/caseload"), "/caseload")


def test_deactivation_locks_the_user_out_at_once(client, app, world, login):
    admin = app.test_client()
    login(world.admin, target=admin)
    login(world.cw_a)
    assert "Alice Avery" in client.get("/caseload").text

    response = admin.post(f"/admin/users/{world.cw_a.id}/deactivate")
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/users"
    assert "Cw.A is deactivated and logged out everywhere." in admin.get("/admin/users").text

    # The caseworker's very next request, with the cookie they already hold, is turned away.
    assert_sent_to_login(client.get("/caseload"), "/caseload")
    assert_sent_to_login(client.get(f"/children/{world.child_a.id}"))

    user = fresh().get(User, world.cw_a.id)
    assert user.active is False
    assert user.deactivated_at == NOW
    assert user.session_epoch == 1
    [event] = events("user.deactivate")
    assert (event.actor_id, event.entity_id) == (world.admin.id, str(world.cw_a.id))

    # And the right password no longer opens the account.
    again = post_login(client, "cw.a", PASSWORD)
    assert again.status_code == 401
    assert NO_MATCH in again.text
    assert "Alice Avery" not in again.text
    # The administrator's own session is untouched.
    assert admin.get("/admin/users").status_code == 200


def contact_form(uuid: str) -> dict:
    return {"purpose": "search", "person": "Dana Reyes", "relationship": "relative",
            "method": "phone", "contacted_at": "2026-03-02T13:40", "reached": "reached",
            "learned": "Thinks she is with a school friend", "client_uuid": uuid,
            "recorded_at": "2026-03-02T19:58:00+00:00"}


def contact_op(episode_id: int, uuid: str) -> dict:
    return {"uuid": uuid, "kind": "search_contact", "episode_id": episode_id,
            "recorded_at": "2026-03-02T19:55:00+00:00",
            "fields": {"purpose": "search", "person": "Aunt May", "relationship": "relative",
                       "method": "phone", "contacted_at": "2026-03-02T19:40:00+00:00",
                       "reached": "reached", "learned": "Saw her at the mall"}}


def contacts_stored() -> int:
    return fresh().scalar(select(func.count()).select_from(SearchContact))


@pytest.mark.parametrize("how", ["deactivate", "log-out-everywhere"])
def test_a_session_ended_by_an_administrator_is_refused_by_the_api_and_htmx_at_once(
        app, world, login, make_episode, how):
    episode = make_episode(world.child_a, world.cw_a)
    phone, htmx_page, admin = app.test_client(), app.test_client(), app.test_client()
    htmx_page.environ_base["HTTP_HX_REQUEST"] = "true"
    for client in (phone, htmx_page):
        login(world.cw_a, target=client)
    login(world.admin, target=admin)
    uuids = [f"7d3c3c1e-0b7e-4c55-8f0e-1f3f7b9f0a0{n}" for n in range(4)]
    contacts = f"/episodes/{episode.id}/contacts"
    # Working before: the sync API takes an op and htmx posts a contact.
    applied = phone.post("/api/v1/sync", json={"ops": [contact_op(episode.id, uuids[0])]})
    assert applied.status_code == 200
    assert applied.get_json()["results"][0]["status"] == "applied"
    assert htmx_page.post(contacts, data=contact_form(uuids[1])).status_code == 303
    assert contacts_stored() == 2

    assert admin.post(f"/admin/users/{world.cw_a.id}/{how}").status_code == 303

    sync = phone.post("/api/v1/sync", json={"ops": [contact_op(episode.id, uuids[2])]})
    for response in (phone.get("/api/v1/session"), phone.get("/api/v1/offline"), sync):
        assert response.status_code == 401
        assert response.get_json() == {"error": "login required"}
    on_page = {"HX-Current-URL": f"http://localhost/episodes/{episode.id}"}
    for response in (htmx_page.get(contacts, headers=on_page),
                     htmx_page.post(contacts, headers=on_page, data=contact_form(uuids[3]))):
        # The whole page goes to the login form, rather than the form landing in a fragment.
        assert response.status_code == 401
        target = urlsplit(response.headers["HX-Redirect"])
        assert target.path == "/login"
        assert parse_qs(target.query)["next"] == [f"/episodes/{episode.id}"]
        assert "Dana Reyes" not in response.text and "Aunt May" not in response.text
    assert contacts_stored() == 2


def test_an_inactive_account_is_refused_even_on_its_current_epoch(client, app, world):
    post_login(client, "cw.a", PASSWORD)
    with db.engine().begin() as conn:  # switched off without bumping the epoch
        conn.execute(update(User).where(User.id == world.cw_a.id).values(active=False))
    assert_sent_to_login(client.get("/caseload"), "/caseload")


def test_log_out_everywhere_ends_every_copy_of_the_session(client, app, world):
    post_login(client, "cw.a", PASSWORD)
    stolen = app.test_client()
    stolen.set_cookie("session", client.get_cookie("session").value)
    assert "Alice Avery" in stolen.get("/caseload").text  # the copy works until revoked

    response = client.post("/account/log-out-everywhere")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert "You are logged out on every device." in client.get("/login").text

    assert_sent_to_login(stolen.get("/caseload"), "/caseload")
    assert_sent_to_login(client.get("/caseload"), "/caseload")
    assert fresh().get(User, world.cw_a.id).session_epoch == 1
    [event] = events("user.revoke_sessions")
    assert (event.actor_id, event.entity_id) == (world.cw_a.id, str(world.cw_a.id))

    # A new login works, on the new epoch.
    post_login(client, "cw.a", PASSWORD)
    assert "Alice Avery" in client.get("/caseload").text
    with client.session_transaction() as session:
        assert session["_user_id"] == f"{world.cw_a.id}:1"


def test_log_out_everywhere_needs_a_login_and_a_post(client, world):
    assert_sent_to_login(client.post("/account/log-out-everywhere"))
    post_login(client, "cw.a", PASSWORD)
    assert client.get("/account/log-out-everywhere").status_code == 405
    assert fresh().get(User, world.cw_a.id).session_epoch == 0


def test_revoking_counts_from_the_database_not_a_stale_copy(app, world):
    db_session = fresh()
    user = db_session.get(User, world.cw_a.id)  # loaded, then another worker revokes meanwhile
    with db.engine().begin() as conn:
        conn.execute(update(User).where(User.id == user.id).values(session_epoch=1))
    with db.writing() as s:
        revoke_sessions(s, user, None)
    assert fresh().get(User, world.cw_a.id).session_epoch == 2


# --- CSRF ------------------------------------------------------------------------------------

@pytest.fixture
def csrf_app(app_config):
    with another_app(app_config, WTF_CSRF_ENABLED=True) as csrf_app:
        yield csrf_app


def login_with_token(client, username="cw.a", password=PASSWORD):
    token = csrf_token(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token})


def assert_form_expired(response):
    assert response.status_code == 400
    assert "<h1>Form expired</h1>" in response.text
    assert "Nothing was saved." in response.text


def test_login_without_a_csrf_token_is_refused_and_writes_nothing(csrf_app, world):
    client = csrf_app.test_client()
    client.get("/login")
    assert_form_expired(post_login(client, "cw.a", "wrong password!"))
    assert_form_expired(post_login(client, "cw.a", PASSWORD))
    assert_form_expired(client.post("/login", data={"username": "cw.a", "password": PASSWORD,
                                                    "csrf_token": "forged"}))
    assert failures("account") == [] and failures("address") == []
    assert events("auth.login_failed") == [] and events("auth.login") == []
    assert_sent_to_login(client.get("/caseload"))


def test_login_with_the_forms_csrf_token_succeeds(csrf_app, world):
    client = csrf_app.test_client()
    response = login_with_token(client)
    assert response.status_code == 302
    assert "Alice Avery" in client.get("/caseload").text


def test_status_change_without_a_csrf_token_is_refused_and_writes_nothing(csrf_app, world):
    client = csrf_app.test_client()
    assert login_with_token(client).status_code == 302
    path = f"/children/{world.child_a.id}/status"
    data = {"status": "released_from_custody", "since": "2026-03-02T13:30",
            "note": "Custody ended by court order."}

    assert_form_expired(client.post(path, data=data))
    child = fresh().get(Child, world.child_a.id)
    assert child.status == "in_placement"
    assert fresh().scalar(select(func.count()).select_from(StatusChange)
                          .where(StatusChange.child_id == child.id)) == 1
    assert events("child.status_change") == []

    token = csrf_token(client.get(path).text)
    response = client.post(path, data=dict(data, csrf_token=token))
    assert response.status_code == 303
    assert response.headers["Location"] == f"/children/{world.child_a.id}"
    assert "Status recorded." in client.get(response.headers["Location"]).text
    child = fresh().get(Child, world.child_a.id)
    assert child.status == "released_from_custody"
    assert len(events("child.status_change")) == 1


def test_htmx_requests_may_send_the_token_as_a_header(csrf_app, world):
    client = csrf_app.test_client()
    login_with_token(client)
    page = client.get("/caseload")
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page.text).group(1)
    response = client.post("/logout", headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code == 303
    assert_sent_to_login(client.get("/caseload"))
