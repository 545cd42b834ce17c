"""Hostile input (issue 8, Security 5): random and malicious values posted to every form, on
both databases (the sync API's share is in test_hostile_sync.py).

The forms are not listed by hand: each role's pages are crawled from its home, every
``<form method=post>`` found is read for its fields, and a table below says which role reaches which
POST endpoint, so a new POST route fails ``test_every_post_route_is_fuzzed_or_excused`` until it
is placed. Hypothesis runs inside each test (the "inner given"), so the database and its cast are
built once per test and examples are cheap; the "ci" profile (tests/conftest.py) makes the
examples the same on every run.

For every request: no 5xx; no markup we posted comes back unescaped, on the answer or on the pages
that show the data; and a refused request (4xx) leaves every stored row as it was.
"""
from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from fieldapp import create_app

from helpers import PASSWORD
from hostile_forms import (CHOICES, HOSTILE_TEXT, LAST, MARKUP, SHARP, Field, Form, actor_of,
                           assert_no_raw_markup, assert_unchanged, crawl, display_pages,
                           endpoint_of, hostile_values, seeds_for, snapshot, submit_initial_stage)
from hostile_forms import scene  # noqa: F401 (a fixture)



# Which role reaches which POST endpoint through the pages. A POST route in none of these, and
# not excused below, fails the test: a new form must be added here and so gets fuzzed.
FUZZED = {
    "anonymous": {"auth.login"},
    "caseworker": {"checklists.record_step", "checklists.contacts", "checklists.located",
                   "checklists.information", "checklists.open_missing", "cases.change_child_status",
                   "profiles.edit_section", "profiles.appearance_changed", "profiles.add_photo",
                   "profiles.packet_page", "reviews.submit", "cases.acknowledge",
                   "compliance.record", "checklists.returned", "checklists.release"},
    "supervisor": {"reviews.send_back", "reviews.sign_off", "reviews.contact_check",
                   "cases.review_unapproved_location"},
    "on_call": {"cases.break_glass"},
    "administrator": {"admin.add_user", "admin.set_team", "admin.account_action", "admin.reassign",
                      "admin.roster", "admin.import_history"},
}
EXCUSED = {
    "api.sync": "JSON, not a form: test_the_sync_api_survives_hostile_batches",
    "auth.logout": "no fields but the CSRF token",
    "auth.log_out_everywhere": "no fields but the CSRF token; it would end the test's session",
}


def test_every_post_route_is_fuzzed_or_excused():
    app = create_app({"TESTING": True, "DATABASE_URL": "sqlite://", "SECRET_KEY": "x"})
    posts = {rule.endpoint for rule in app.url_map.iter_rules() if "POST" in rule.methods}
    placed = set().union(*FUZZED.values()) | set(EXCUSED)
    assert posts - placed == set(), "add these POST endpoints to FUZZED (or EXCUSED, with why)"
    assert placed - posts == set(), "these are no longer POST endpoints"


# --- drawing a submission -----------------------------------------------------------------

VALID_BY_KIND = {"datetime-local": ("2026-03-02T13:30", "2026-03-01T09:05"),
                 "date": ("2026-03-01", "2025-11-30"), "number": ("3",), "password": (PASSWORD,),
                 "tel": ("417-555-0199",), "email": ("a@example.org",)}


def _valid(f: Field):
    if f.kind in ("select", "radio", "checkbox"):
        return st.sampled_from(f.options or [""])
    if f.kind in ("hidden", "submit"):
        return st.just(f.value)
    if f.kind in VALID_BY_KIND:
        return st.sampled_from(VALID_BY_KIND[f.kind] + ((f.value,) if f.value else ()))
    # Free text: markup is valid text and must be stored and shown as text.
    return st.sampled_from((*MARKUP, "Seen near the library", f.value or "Called twice"))


def _upload(data) -> tuple:
    body = data.draw(st.one_of(
        st.binary(max_size=300),
        st.lists(st.sampled_from(HOSTILE_TEXT[:30]), max_size=8).map(lambda cells: (
            "username,display_name,role,team\n" + ",".join(cells)).encode("utf-8", "replace")),
        st.just(b"\xff\xd8\xff\xe0 not really a jpeg")), label="upload")
    name = data.draw(st.sampled_from(["x.csv", "photo.jpg", "../../x.csv", "<script>.csv"]))
    return io.BytesIO(body), name


def draw_submission(data, form: Form) -> MultiDict:
    """Every field valid (free text carrying markup), or each field valid, hostile, missing or
    repeated; sometimes a field nobody asked for."""
    hostile = data.draw(st.booleans(), label="hostile")
    pairs = []
    for f in form.fields.values():
        how = (data.draw(st.sampled_from(["valid", "hostile", "hostile", "missing", "repeated"]),
                         label=f.name) if hostile else "valid")
        if f.kind == "file":
            if how != "missing" and how != "valid":
                pairs.append((f.name, _upload(data)))
            continue
        if how == "missing":
            continue
        if f.kind == "checkbox" and how == "valid" and data.draw(st.booleans()):
            continue  # unticked
        draw = _valid(f) if how == "valid" else hostile_values()
        pairs.append((f.name, data.draw(draw, label=f.name)))
        if how == "repeated":
            pairs.append((f.name, data.draw(hostile_values(), label=f.name)))
    if hostile and data.draw(st.booleans()):
        pairs.append((data.draw(st.sampled_from(["zz", "ev_nothing", "reason_x", "q_x", "id"])),
                      data.draw(hostile_values())))
    return MultiDict(pairs)


# --- the fuzzing ---------------------------------------------------------------------------

class Fuzzer:
    """Posts drawn submissions to one role's forms and checks each answer."""

    def __init__(self, app, client, login, actor, display: list[str]):
        self.app, self.client, self.login, self.actor = app, client, login, actor
        self.engine = app.extensions["fieldapp.engine"]
        self.display = display
        self.posted = self.accepted = self._displayed = 0
        self._before = None

    def relogin(self, response) -> None:
        """An account action may end the test's own session (an administrator logging
        themselves out everywhere): log in again."""
        if self.actor is not None and response.headers.get("Location", "").startswith("/login"):
            assert self.login(self.actor).status_code == 302
            self._before = None

    def post(self, url: str, submission: MultiDict, *, htmx: bool) -> None:
        before = self._before or snapshot(self.engine)
        headers = {"HX-Request": "true"} if htmx else {}
        response = self.client.post(url, data=submission, headers=headers)
        self.posted += 1
        where = f"POST {url} {dict(submission.lists())!r:.300}"
        assert response.status_code < 500, where
        if response.mimetype == "text/html":
            assert_no_raw_markup(where, response.text)
        if 400 <= response.status_code < 500:
            self._before = snapshot(self.engine)
            assert_unchanged(before, self._before, where)
        else:
            self.accepted += 1
            self._before = None
            self.follow(response, where)
        self.relogin(response)

    def follow(self, response, where: str) -> None:
        target = response.headers.get("HX-Redirect") or response.headers.get("Location")
        if target and not target.startswith("/login"):
            page = self.client.get(target)
            assert page.status_code < 500, (where, target)
            if page.mimetype == "text/html":
                assert_no_raw_markup(f"{target} after {where}", page.text)

    def check_display(self) -> None:
        """The pages that show what was stored, read back after a form's examples (when any
        was stored since the last look)."""
        if self.accepted == self._displayed:
            return
        self._displayed = self.accepted
        for url in self.display:
            page = self.client.get(url)
            assert page.status_code < 500, url
            if page.mimetype == "text/html":
                assert_no_raw_markup(url, page.text)

    def sharpen(self, form: Form) -> None:
        """Beyond the random draws, each form once per sharp value: every free-text field carries
        it (and, for the huge number, every hidden and number field), the rest is valid, so
        that the value reaches the database if anything lets it."""
        for sharp in SHARP:
            carries = ("text", "textarea") + (("hidden", "number") if sharp.isdigit() else ())
            pairs = [(f.name, sharp if f.kind in carries else
                      (next((o for o in f.options if o), "") if f.kind in CHOICES
                       else f.value if f.kind == "hidden" else VALID_BY_KIND.get(f.kind, ("",))[0]))
                     for f in form.fields.values() if f.kind not in ("file", "submit")]
            self.post(form.action, MultiDict(pairs), htmx=False)

    def fuzz(self, form: Form, examples: int) -> None:
        @settings(max_examples=examples)
        @given(data=st.data())
        def run(data):
            submission = draw_submission(data, form)
            self.post(form.action, submission, htmx=data.draw(st.booleans(), label="htmx"))
        run()



@pytest.mark.parametrize("role", list(FUZZED))
def test_every_form_survives_hostile_posts(role, app, scene, client, login, request):
    if role == "supervisor":
        submit_initial_stage(scene)
    actor = actor_of(scene, role)
    if actor is not None:
        login(actor)
    # The caseworker's crawl reads every page of the case; the others need only reach their forms.
    pages, forms = crawl(client, seeds_for(scene, role), limit=150 if role == "caseworker" else 40)
    reached = {endpoint_of(app, f.action) for f in forms}
    assert FUZZED[role] <= reached, f"the crawl as {role} did not reach {FUZZED[role] - reached}"
    # One form per view and set of fields: the same buttons for each user of the admin page are
    # one form, while each checklist step (its own evidence fields) is a form of its own. Each
    # role posts to its own endpoints only: the supervisor's step forms are the caseworker's.
    by_endpoint: dict[str, dict] = {}
    for form in forms:
        endpoint = endpoint_of(app, form.action)
        if endpoint in FUZZED[role]:
            by_endpoint.setdefault(endpoint, {}).setdefault(frozenset(form.fields), form)
    fuzzer = Fuzzer(app, client, login, actor, display_pages(scene))
    for endpoint in sorted(by_endpoint, key=lambda e: e in LAST):
        variants = list(by_endpoint[endpoint].values())
        # Ten examples for a one-off form; at least two for each of the many step forms.
        for form in variants:
            fuzzer.fuzz(form, max(2, 10 // len(variants)))
            fuzzer.sharpen(form)
        fuzzer.check_display()
    # Every page of the crawl again, with everything the examples stored.
    for url in pages:
        page = client.get(url)
        assert page.status_code < 500, url
        if page.mimetype == "text/html":
            assert_no_raw_markup(url, page.text)
    request.node.user_properties.append(("examples", fuzzer.posted))
    print(f"{role}: {len(pages)} pages, {sum(map(len, by_endpoint.values()))} forms, "
          f"{fuzzer.posted} posts, {fuzzer.accepted} accepted")



@pytest.mark.parametrize("number", [2**31, 2**63, 2**80])
def test_an_id_past_any_integer_column_is_404(app, world, client, login, number):
    """Every route with an id, given one no INTEGER column holds (SQLite's driver overflows past
    2**63, PostgreSQL's integer past 2**31 - 1): 404, as for any unknown id (405 where werkzeug's
    matcher has seen the path for another method first)."""
    login(world.cw_a)
    checked = 0
    for rule in app.url_map.iter_rules():
        if "<int:" not in rule.rule:
            continue
        path = "/".join(str(number) if part.startswith("<int:") else "x" if part.startswith("<")
                        else part for part in rule.rule.split("/"))
        for method in sorted(rule.methods & {"GET", "POST"}):
            response = client.open(path, method=method)
            assert response.status_code in (404, 405), (method, path, response.status_code)
            checked += 1
    assert checked > 30


def test_a_nul_in_a_query_string_is_400_not_a_database_error(world, client, login):
    login(world.cw_a)
    response = client.get("/caseload", query_string={"q": "Al\x00ice"})
    assert response.status_code == 400 and "NUL" in response.text
    assert client.get("/caseload", query_string={"q": "Alice"}).status_code == 200
