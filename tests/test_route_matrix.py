"""The authorization matrix (DESIGN §9, issue 8): every route of the URL map, as every kind of user.

``EXPECTED`` says, for each endpoint and method, what each actor gets: the login page (401 JSON
under /api/), 404, 403 (an auditor's write) or the page. The test walks ``app.url_map`` through
``route_catalog``, so a new route is tried at once, and a route without an entry here fails the
coverage test. Each actor's test reports every mismatch in one message. The same requests check
the security headers, and that no actor outside the case team is ever shown a sensitive field.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from fieldapp import create_app
from fieldapp.web import NO_PERSONAL_DATA

from helpers import PASSWORD
from route_catalog import (IDENTIFYING_MARKERS, SENSITIVE_MARKERS, UnknownParameter,
                           build_world, concrete_routes, snapshot, snapshot_difference)

LOGIN = "login"  # anonymous, sent to auth.login (a 3xx), or 401 JSON under /api/
SIGNED_OUT = "signed out"  # signed in, sent to auth.login: logging out did what it says
NOT_FOUND = "404"
FORBIDDEN = "403"
OK = "ok"  # past the access check: 2xx, a 3xx not to the login page, or 422 (an empty form refused)
REFUSALS = (LOGIN, NOT_FOUND, FORBIDDEN)

# Actor -> the user in the world (conftest ``world`` plus route_catalog.build_world).
ACTORS = {
    "anonymous": None,
    "owner": "cw_a",  # caseworker A: A's child is theirs
    "team_supervisor": "sup_a",
    "other_caseworker": "cw_b",  # caseworker B, on A's child
    "other_supervisor": "sup_b",
    "on_call": "oncall_no_grant",
    "on_call_granted": "oncall",  # break-glass grant on A's child, whose episode is open
    "auditor": "auditor",
    "administrator": "admin",
}
CASE_TEAM = ("owner", "team_supervisor", "on_call_granted")
# Strings each actor must never be shown, in any response.
NEVER_SHOWN = {
    **{actor: IDENTIFYING_MARKERS + SENSITIVE_MARKERS
       for actor in ("anonymous", "other_caseworker", "other_supervisor", "on_call", "auditor")},
    "administrator": SENSITIVE_MARKERS,
}
# Policies that never send a page's address (with its child or episode id) to another site.
PRIVATE_REFERRERS = frozenset({"no-referrer", "same-origin", "strict-origin"})
# Half the actors go over HTTPS, so HSTS is checked both present and absent, signed in and out.
OVER_HTTPS = frozenset({"anonymous", "owner", "auditor"})


def expect(default: str = NOT_FOUND, **by_actor: str) -> dict[str, str]:
    """A row of the table: anonymous gets the login page unless named, others ``default``."""
    return {actor: by_actor.get(actor, LOGIN if actor == "anonymous" else default)
            for actor in ACTORS}


def write(row: dict[str, str]) -> dict[str, str]:
    """The same row for a write: an auditor is told 403, whatever the child."""
    return {**row, "auditor": FORBIDDEN}


def allowed(*actors: str) -> dict[str, str]:
    return expect(**{actor: OK for actor in actors})


PUBLIC = expect(OK, anonymous=OK)
ANY_USER = expect(OK)
SIGN_OUT = expect(SIGNED_OUT)
CASE_READ = allowed(*CASE_TEAM, "administrator")  # can_work: the case team and administrators
CASE_WRITE = write(CASE_READ)
CASE_TEAM_READ = allowed(*CASE_TEAM)  # the photo, endangerment and the packet: not administrators
CASE_TEAM_WRITE = write(CASE_TEAM_READ)
REVIEWERS = write(allowed("team_supervisor", "administrator"))
ADMIN_READ = allowed("administrator")
ADMIN_WRITE = write(ADMIN_READ)
MEASURE_READERS = allowed("team_supervisor", "other_supervisor", "administrator", "auditor")
ON_CALL = allowed("on_call", "on_call_granted")

EXPECTED: dict[tuple[str, str], dict[str, str]] = {
    # auth
    ("auth.login", "GET"): PUBLIC,
    ("auth.login", "POST"): PUBLIC,
    ("auth.logout", "POST"): SIGN_OUT,
    ("auth.log_out_everywhere", "POST"): SIGN_OUT,
    # cases
    ("cases.home", "GET"): ANY_USER,
    ("cases.caseload", "GET"): expect(OK, auditor=NOT_FOUND),  # everyone's own caseload
    ("cases.child", "GET"): CASE_READ,
    ("cases.change_child_status", "GET"): CASE_READ,
    ("cases.change_child_status", "POST"): CASE_WRITE,
    ("cases.review_unapproved_location", "POST"): REVIEWERS,
    ("cases.acknowledge", "POST"): write(allowed("owner")),  # the handover is A's
    ("cases.on_call", "GET"): ON_CALL,
    ("cases.break_glass", "GET"): ON_CALL,
    ("cases.break_glass", "POST"): write(ON_CALL),
    ("cases.overview", "GET"): allowed("team_supervisor", "other_supervisor", "administrator",
                                       "auditor"),
    # the wizard
    ("checklists.my_work", "GET"): expect(OK, auditor=NOT_FOUND),
    ("checklists.open_missing", "GET"): CASE_READ,
    ("checklists.open_missing", "POST"): CASE_WRITE,
    ("checklists.overview", "GET"): CASE_READ,
    ("checklists.step[plain]", "GET"): CASE_READ,
    # An administrator sees that a sensitive step exists, not what it holds, and cannot record it.
    ("checklists.step[sensitive]", "GET"): CASE_READ,
    ("checklists.record_step[plain]", "POST"): CASE_WRITE,
    ("checklists.record_step[sensitive]", "POST"): CASE_TEAM_WRITE,
    ("checklists.contacts", "GET"): CASE_READ,
    ("checklists.contacts", "POST"): CASE_WRITE,
    ("checklists.information", "GET"): CASE_READ,
    ("checklists.information", "POST"): CASE_WRITE,
    ("checklists.located", "GET"): CASE_READ,
    ("checklists.located", "POST"): CASE_WRITE,
    ("checklists.returned", "GET"): CASE_READ,
    ("checklists.returned", "POST"): CASE_WRITE,
    ("checklists.release", "GET"): CASE_READ,
    ("checklists.release", "POST"): CASE_WRITE,
    # review and sign-off
    ("reviews.queue", "GET"): allowed("team_supervisor", "other_supervisor", "administrator"),
    ("reviews.episode_review", "GET"): CASE_READ,
    ("reviews.submit", "POST"): CASE_WRITE,
    ("reviews.send_back", "POST"): REVIEWERS,
    ("reviews.sign_off", "POST"): REVIEWERS,
    ("reviews.contact_check", "POST"): REVIEWERS,
    ("reports.episode_record", "GET"): CASE_READ,
    ("reports.episode_pdf", "GET"): CASE_READ,
    # identification and the packet
    ("profiles.profile", "GET"): CASE_READ,
    ("profiles.edit_section[plain]", "GET"): CASE_READ,
    ("profiles.edit_section[plain]", "POST"): CASE_WRITE,
    ("profiles.edit_section[sensitive]", "GET"): CASE_TEAM_READ,
    ("profiles.edit_section[sensitive]", "POST"): CASE_TEAM_WRITE,
    ("profiles.appearance_changed", "POST"): CASE_TEAM_WRITE,
    ("profiles.add_photo", "GET"): CASE_TEAM_READ,
    ("profiles.add_photo", "POST"): CASE_TEAM_WRITE,
    ("profiles.photo", "GET"): CASE_TEAM_READ,
    ("profiles.packet_page", "GET"): CASE_TEAM_READ,
    ("profiles.packet_page", "POST"): CASE_TEAM_WRITE,
    ("profiles.packet_pdf", "GET"): CASE_TEAM_READ,
    ("profiles.packet_text", "GET"): CASE_TEAM_READ,
    # prevention and the measures
    ("compliance.prevention", "GET"): CASE_READ,
    ("compliance.record", "POST"): CASE_WRITE,
    ("compliance.high_risk", "GET"): allowed("owner", "team_supervisor", "other_caseworker",
                                             "other_supervisor", "administrator"),
    ("compliance.dashboard", "GET"): MEASURE_READERS,
    ("compliance.report_pdf", "GET"): MEASURE_READERS,
    ("compliance.chart", "GET"): MEASURE_READERS,
    ("compliance.episodes", "GET"): MEASURE_READERS,
    ("compliance.episodes_csv", "GET"): MEASURE_READERS,
    ("compliance.reconciliation", "GET"): MEASURE_READERS,
    ("compliance.reconciliation_csv", "GET"): MEASURE_READERS,
    ("compliance.export_db", "GET"): allowed("administrator", "auditor"),  # auditor: de-identified
    # administration
    ("admin.users", "GET"): ADMIN_READ,
    ("admin.add_user", "POST"): ADMIN_WRITE,
    ("admin.set_team", "POST"): ADMIN_WRITE,
    ("admin.account_action", "POST"): ADMIN_WRITE,
    ("admin.reassign", "GET"): ADMIN_READ,
    ("admin.reassign", "POST"): ADMIN_WRITE,
    ("admin.roster", "GET"): ADMIN_READ,
    ("admin.roster", "POST"): ADMIN_WRITE,
    ("admin.import_history", "GET"): ADMIN_READ,
    ("admin.import_history", "POST"): ADMIN_WRITE,
    ("admin.audit", "GET"): ADMIN_READ,
    # the sync API: an op on A's episode, applied for those who may work it, "not found" for others
    ("api.session_info", "GET"): ANY_USER,
    ("api.offline", "GET"): ANY_USER,
    ("api.sync", "POST"): CASE_WRITE,
    # the PWA and the static files
    ("pwa.manifest", "GET"): PUBLIC,
    ("pwa.service_worker", "GET"): PUBLIC,
    ("pwa.offline_page", "GET"): PUBLIC,
    ("pwa.outbox", "GET"): ANY_USER,
    ("static", "GET"): PUBLIC,
    ("health.alive", "GET"): PUBLIC,
}

# A response's own policy that replaces the page policy: pygal writes <style> into the SVG, which
# an <img> shows without running anything; the SVG policy forbids every other source.
OWN_POLICY = {"compliance.chart": "style-src 'unsafe-inline'"}


def missing_entries(routes) -> list[str]:
    """Routes of the URL map that the table says nothing about."""
    return sorted({f"{r.key} {r.method}" for r in routes if (r.key, r.method) not in EXPECTED})


def stale_entries(routes) -> list[str]:
    """Entries of the table for routes that no longer exist."""
    present = {(r.key, r.method) for r in routes}
    return sorted(f"{key} {method}" for key, method in EXPECTED if (key, method) not in present)


def sends_to_login(response) -> bool:
    if response.status_code not in (301, 302, 303, 307, 308):
        return False
    return urlsplit(response.headers.get("Location", "")).path == "/login"


def outcome_of(route, response, signed_in: bool) -> str:
    """What the actor got, in the table's words. Only logging out sends a signed-in user to the
    login page; anyone else sent there was refused."""
    status = response.status_code
    if route.is_api and status == 401:
        return LOGIN if response.is_json and response.json.get("error") else "401 without JSON"
    if sends_to_login(response):
        if route.is_api:  # a page script that followed it would take the form for success
            return "a redirect to the login page under /api/"
        return SIGNED_OUT if signed_in else LOGIN
    if status in (403, 404):
        return str(status)
    if route.endpoint == "api.sync" and status == 200:
        # The batch is read for anyone signed in; each op gets its own answer.
        answers = {result["status"] + ":" + result.get("reason", "")
                   for result in response.json["results"]}
        return {frozenset({"applied:"}): OK,
                frozenset({"rejected:not found"}): NOT_FOUND}.get(frozenset(answers), str(answers))
    if 200 <= status < 400 or status == 422:
        return OK
    return f"HTTP {status}"


def header_problems(route, response, signed_in: bool, https: bool) -> list[str]:
    """What is wrong with the security headers of one response."""
    problems = []
    headers = response.headers
    policy = headers.get("Content-Security-Policy", "")
    own = OWN_POLICY.get(route.endpoint) if response.status_code == 200 else None
    if not policy:
        problems.append("no Content-Security-Policy")
    elif own is None:
        for unsafe in ("'unsafe-inline'", "'unsafe-eval'"):
            if unsafe in policy:
                problems.append(f"CSP allows {unsafe}")
    elif own not in policy or "script-src" in policy or "'unsafe-eval'" in policy:
        problems.append(f"CSP of its own is not just {own!r}: {policy!r}")
    if "frame-ancestors 'none'" not in policy:
        problems.append("CSP lacks frame-ancestors 'none'")
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if headers.get("Referrer-Policy") not in PRIVATE_REFERRERS:
        problems.append(f"Referrer-Policy {headers.get('Referrer-Policy')!r}")
    if headers.get("X-Frame-Options") != "DENY":  # frame-ancestors, for browsers without it
        problems.append("no X-Frame-Options: DENY")
    hsts = headers.get("Strict-Transport-Security")
    if https and not (hsts or "").startswith("max-age="):
        problems.append("no HSTS over HTTPS")
    if not https and hsts:
        problems.append("HSTS over plain HTTP")
    if (signed_in and route.endpoint not in NO_PERSONAL_DATA
            and "no-store" not in headers.get("Cache-Control", "")):
        problems.append(f"Cache-Control {headers.get('Cache-Control')!r}, not no-store")
    return [f"{route}: {problem}" for problem in problems]


@pytest.fixture
def full_world(world):
    return build_world(world)


def log_in(client, user, base_url):
    response = client.post("/login", data={"username": user.username, "password": PASSWORD},
                           base_url=base_url)
    assert response.status_code == 302, f"{user.username} could not log in"


@pytest.mark.parametrize("actor", list(ACTORS))
def test_every_route_answers_each_actor_as_the_table_says(app, full_world, actor):
    routes = concrete_routes(app, full_world)
    assert not missing_entries(routes), "see test_every_route_has_an_entry"
    user = getattr(full_world, ACTORS[actor]) if ACTORS[actor] else None
    https = actor in OVER_HTTPS
    base_url = "https://localhost" if https else "http://localhost"
    client = app.test_client()
    if user:
        log_in(client, user, base_url)
    problems, shown = [], set()
    unchanged = None  # the rows as they stand, while only refusals have been sent since
    for route in routes:
        expected = EXPECTED[route.key, route.method][actor]
        refusal = expected in REFUSALS
        if refusal and unchanged is None:
            unchanged = snapshot()
        # A refused request carries a body that would be stored, so "wrote nothing" means it.
        response = client.open(route.url, method=route.method, base_url=base_url,
                               **route.body(valid=refusal))
        got = outcome_of(route, response, user is not None)
        if got != expected:
            problems.append(f"{route}: expected {expected}, got {got}")
        if refusal:
            after = snapshot()
            changed = snapshot_difference(unchanged, after)
            if changed:
                problems.append(f"{route}: refused, yet changed {', '.join(changed)}")
            unchanged = after
        else:
            unchanged = None
        if route.method == "GET":
            problems += header_problems(route, response, user is not None, https)
        body = response.get_data(as_text=False)
        for marker in SENSITIVE_MARKERS + IDENTIFYING_MARKERS:
            if marker.encode() in body:
                shown.add(marker)
                if marker in NEVER_SHOWN.get(actor, ()):
                    problems.append(f"{route}: shows {marker!r} to {actor}")
        if got == SIGNED_OUT:
            if not sends_to_login(client.get("/", base_url=base_url)):
                problems.append(f"{route}: still signed in after being sent to log in again")
            log_in(client, user, base_url)
    if actor in CASE_TEAM:
        # The other actors' "never shown" means something only if the markers are shown at all.
        assert set(SENSITIVE_MARKERS) <= shown, f"{actor} was never shown {SENSITIVE_MARKERS}"
    assert not problems, f"{len(problems)} problems for {actor}:\n" + "\n".join(problems)


def test_every_route_has_an_entry(app, full_world):
    routes = concrete_routes(app, full_world)
    assert missing_entries(routes) == []
    assert stale_entries(routes) == []
    assert len(routes) >= 80  # the catalogue is the whole URL map, not a lucky subset


def test_a_route_added_without_an_entry_is_reported(app_config, full_world):
    fresh_app = create_app(app_config)
    try:
        fresh_app.add_url_rule("/children/<int:child_id>/tattoo", "cases.tattoo",
                               lambda child_id: "", methods=["GET", "POST"])
        with fresh_app.app_context():
            routes = concrete_routes(fresh_app, full_world)
        assert missing_entries(routes) == ["cases.tattoo GET", "cases.tattoo POST"]
        tattoo = [r.url for r in routes if r.endpoint == "cases.tattoo"]
        assert tattoo == [f"/children/{full_world.child_a.id}/tattoo"] * 2

        fresh_app.add_url_rule("/widgets/<int:widget_id>", "cases.widget", lambda widget_id: "")
        with pytest.raises(UnknownParameter, match="widget_id"):
            concrete_routes(fresh_app, full_world)
    finally:
        fresh_app.extensions["fieldapp.engine"].dispose()


# --- what the pages are made of: nothing the CSP would have to allow ----------------------

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
FORBIDDEN_IN_TEMPLATES = {
    "an hx-on attribute": re.compile(r"\bhx-on", re.I),
    "an htmx trigger filter": re.compile(r"hx-trigger\s*=\s*[\"'][^\"']*\[", re.I),
    "an inline script": re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I),
    "a style attribute": re.compile(r"\sstyle\s*=", re.I),
    "a <style> element": re.compile(r"<style\b", re.I),
    "an inline event handler": re.compile(r"\son[a-z]+\s*=", re.I),
    "a javascript: URL": re.compile(r"""=\s*["']?\s*javascript:""", re.I),
}


def test_templates_need_no_inline_script_style_or_htmx_eval():
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for what, pattern in FORBIDDEN_IN_TEMPLATES.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(TEMPLATES)}:{line}: {what}")
    assert found == []


def test_htmx_is_configured_without_eval_or_injected_styles():
    layout = (TEMPLATES / "layout.html").read_text(encoding="utf-8")
    config = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'', layout)
    assert config, "layout.html must configure htmx"
    import json
    settings = json.loads(config.group(1))
    assert settings["allowEval"] is False and settings["includeIndicatorStyles"] is False


def test_the_template_checks_catch_what_they_look_for():
    samples = {
        "an hx-on attribute": '<button hx-on:click="go()">',
        "an htmx trigger filter": '<input hx-trigger="keyup[key==\'Enter\']">',
        "an inline script": "<script>alert(1)</script>",
        "a style attribute": '<p style="color: red">',
        "a <style> element": "<style>p {}</style>",
        "an inline event handler": '<a onclick="go()">',
        "a javascript: URL": '<a href="javascript:go()">',
    }
    for what, sample in samples.items():
        assert FORBIDDEN_IN_TEMPLATES[what].search(sample), what
    assert not FORBIDDEN_IN_TEMPLATES["an inline script"].search(
        '<script src="/static/js/app.js" defer></script>')
    assert not FORBIDDEN_IN_TEMPLATES["a javascript: URL"].search("<p>This needs JavaScript: sorry")
    assert not FORBIDDEN_IN_TEMPLATES["an htmx trigger filter"].search(
        '<form hx-trigger="input changed delay:300ms from:#q, submit">')
