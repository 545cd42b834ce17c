"""CSRF on every state-changing route of the URL map (issue 8, Security 2).

With CSRF protection on, as in production, each POST/PUT/PATCH/DELETE route is sent by a user who
may use it, with a body it would store: without a token, with a forged one, with another session's
token, and as htmx sends it (HX-Request and the X-CSRFToken header), each time refused with 400 and
nothing written. The same request with the session's own token then goes through, so each refusal
is the token's doing. The sync API takes the token in X-CSRFToken, from /api/v1/session, as
static/js/offline.js sends it.
"""
from __future__ import annotations

import re

import pytest

from fieldapp import create_app

from helpers import PASSWORD, IsolatedClient
from route_catalog import build_world, concrete_routes, snapshot, snapshot_difference
from test_route_matrix import ACTORS, EXPECTED, OK, SIGNED_OUT

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Who sends each route: the first of these the matrix lets through.
SENDERS = ("owner", "team_supervisor", "administrator", "on_call_granted", "on_call")


@pytest.fixture
def csrf_app(app_config):
    """A second app on the same database with CSRF on, as a production worker has it."""
    other = create_app(dict(app_config, WTF_CSRF_ENABLED=True))
    other.test_client_class = IsolatedClient
    yield other
    other.extensions["fieldapp.engine"].dispose()


def form_token(page_text: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page_text).group(1)


def log_in(client, user) -> None:
    token = form_token(client.get("/login").text)
    response = client.post("/login", data={"username": user.username, "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 302, f"{user.username} could not log in"


def session_token(client) -> str:
    answer = client.get("/api/v1/session")
    assert answer.status_code == 200, "the sender is no longer logged in"
    return answer.json["csrf_token"]


def sender_of(route) -> str:
    row = EXPECTED[route.key, route.method]
    return next(actor for actor in SENDERS if row[actor] in (OK, SIGNED_OUT))


def with_token(body: dict, token: str | None, *, header: bool = False, htmx: bool = False) -> dict:
    """The request's keyword arguments with ``token`` in the form, or in X-CSRFToken."""
    kwargs = {key: dict(value) if isinstance(value, dict) else value for key, value in body.items()}
    headers = {"HX-Request": "true"} if htmx else {}
    if token is not None and (header or "json" in kwargs):
        headers["X-CSRFToken"] = token
    elif token is not None:
        kwargs.setdefault("data", {})["csrf_token"] = token
    return {**kwargs, "headers": headers}


def refusal_problems(route, response) -> list[str]:
    if response.status_code != 400:
        return [f"status {response.status_code}, not 400"]
    if route.is_api:
        ok = response.is_json and "CSRF" in response.json.get("error", "")
    else:
        ok = "<h1>Form expired</h1>" in response.text
    return [] if ok else ["400, but not the CSRF answer"]


def test_every_state_changing_route_needs_the_sessions_token(app, world, csrf_app):
    world = build_world(world)
    routes = [r for r in concrete_routes(csrf_app, world) if r.method in STATE_CHANGING]
    assert len(routes) >= 30 and any(r.endpoint == "api.sync" for r in routes)
    # Another session's token: well signed, but not this session's.
    stranger = csrf_app.test_client()
    log_in(stranger, world.cw_b)
    strangers_token = session_token(stranger)

    problems, clients, written = [], {}, 0
    for route in sorted(routes, key=sender_of):
        actor = sender_of(route)
        user = getattr(world, ACTORS[actor])
        if actor not in clients:
            clients[actor] = csrf_app.test_client()
            log_in(clients[actor], user)
        client = clients[actor]
        attempts = {
            "no token": with_token(route.body(valid=True), None),
            "a forged token": with_token(route.body(valid=True), "forged"),
            "another session's token": with_token(route.body(valid=True), strangers_token),
            "htmx, no token": with_token(route.body(valid=True), None, htmx=True),
            "htmx, a forged header": with_token(route.body(valid=True), "forged", header=True,
                                                htmx=True),
        }
        before = snapshot()
        for attempt, kwargs in attempts.items():
            response = client.open(route.url, method=route.method, **kwargs)
            for problem in refusal_problems(route, response):
                problems.append(f"{route} as {actor}, {attempt}: {problem}")
        after = snapshot()
        changed = snapshot_difference(before, after)
        if changed:
            problems.append(f"{route} as {actor}: a refused request wrote {', '.join(changed)}")

        # The control: the session's own token lets the same request through.
        before = after
        response = client.open(route.url, method=route.method,
                               **with_token(route.body(valid=True), session_token(client)))
        if response.status_code == 400:
            problems.append(f"{route} as {actor}: refused even with the session's token")
        if route.has_valid_body:
            if snapshot_difference(before, snapshot()):
                written += 1
            else:
                problems.append(f"{route} as {actor}: its valid body wrote nothing "
                                f"(HTTP {response.status_code}); fix VALID_BODIES")
        if response.status_code in (302, 303) and response.headers["Location"].startswith("/login"):
            log_in(client, user)  # it logged the sender out, as it should
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
    assert written >= 8


def test_the_sync_api_takes_the_token_from_the_session_endpoint(app, world, csrf_app):
    world = build_world(world)
    [sync] = [r for r in concrete_routes(csrf_app, world) if r.endpoint == "api.sync"]
    client = csrf_app.test_client()
    log_in(client, world.cw_a)

    refused = client.post(sync.url, **sync.body())
    assert refused.status_code == 400
    assert refused.json == {"error": "CSRF token missing or invalid; get a fresh one from "
                                     "/api/v1/session."}

    token = client.get("/api/v1/session").json["csrf_token"]
    accepted = client.post(sync.url, headers={"X-CSRFToken": token}, **sync.body())
    assert accepted.status_code == 200
    assert [result["status"] for result in accepted.json["results"]] == ["applied"]
