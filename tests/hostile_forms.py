"""Hostile values, and reading a role's forms off its pages: shared by the hostile-input tests
(test_hostile_input.py, test_hostile_sync.py) and the markup-in-notes test
(test_script_notes.py).

``scene`` is a fixture: a test module that uses it imports it from here.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import strategies as st
from sqlalchemy import MetaData, select
from werkzeug.exceptions import HTTPException

from fieldapp import db
from fieldapp.caseloads import reassign_child
from fieldapp.checklists import record_item
from fieldapp.episodes import mark_located
from fieldapp.models import Child, Episode, ReviewStage, User
from fieldapp.reviews import open_steps, submit_stage
from fieldapp.status import UnapprovedLocation, change_status

from helpers import NOW

# --- what is posted --------------------------------------------------------------------------

MARKUP = ('<script>alert(1)</script>', '"><img src=x onerror=alert(1)>',
          "Seen <script>alert('x')</script> at the mall", "'><img src=x onerror=alert(document.domain)>")
# What must never come back as markup: the browser would run it.
RAW = ("<script>alert(", "<img src=x onerror")
HOSTILE_TEXT = (
    *MARKUP, "{{7*7}}", "{% raw %}", "${7*7}", "'; DROP TABLE children; --", "1 OR 1=1", '" OR ""="',
    '=HYPERLINK("http://evil.example","open")', "+1+2", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1",
    "2026-02-30", "2026-02-30T10:00", "99999-01-01", "99999-01-01T00:00", "0000-00-00T00:00",
    "2026-13-01", "1900-01-01T00:00", "2026-03-02T25:61", "2026-03-08T02:30", "2026-03-02T14:30+14:00",
    "", " ", "\n", "-1", "-99999999999999999999", "0", str(2**63), str(10**100), "1e309", "NaN",
    "null", "None", "true", "[]", "{}", "\x00", "a\x00b", "\x1b[31m", "\r\n\r\n", "\u202eevil",
    "\ufeff", "🧒🏽", "ß" * 300, "A" * 5000, "x" * 70_000, "../../etc/passwd", "%s%s%n",
    "javascript:alert(1)",
)


# Values for every free field at once: NUL (which PostgreSQL text cannot hold), an id past any
# integer column, and text past any length limit.
SHARP = ("a\x00b", str(2**80), "x" * 70_000)
CHOICES = ("select", "radio", "checkbox")


def hostile_values():
    return st.one_of(
        st.sampled_from(HOSTILE_TEXT),
        # Any Unicode but lone surrogates (which no browser can send), control characters included.
        st.text(st.characters(exclude_categories=["Cs"]), max_size=60),
        st.integers(min_value=-(2**80), max_value=2**80).map(str),
    )


# --- reading the pages -----------------------------------------------------------------------

@dataclass
class Field:
    name: str
    kind: str  # text, textarea, select, radio, checkbox, hidden, password, date, file, ...
    options: list[str] = field(default_factory=list)
    value: str = ""


@dataclass
class Form:
    page: str
    action: str
    fields: dict[str, Field] = field(default_factory=dict)


class _PageParser(HTMLParser):
    """The POST forms of a page and the links on it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._form: Form | None = None
        self._select: Field | None = None
        self._textarea: Field | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "form":
            self._form = (Form("", a.get("action") or "")
                          if (a.get("method") or "get").lower() == "post" else None)
        elif self._form is None:
            return
        elif tag in ("input", "button") and a.get("name"):
            kind = (a.get("type") or ("submit" if tag == "button" else "text")).lower()
            known = self._form.fields.get(a["name"])
            if known is not None and kind in ("radio", "checkbox"):
                known.options.append(a.get("value") or "on")
            else:
                self._form.fields[a["name"]] = Field(
                    a["name"], kind, [a.get("value") or "on"] if kind in ("radio", "checkbox") else [],
                    a.get("value") or "")
        elif tag == "select" and a.get("name"):
            self._select = self._form.fields[a["name"]] = Field(a["name"], "select")
        elif tag == "option" and self._select is not None:
            self._select.options.append(a.get("value") or "")
        elif tag == "textarea" and a.get("name"):
            self._textarea = self._form.fields[a["name"]] = Field(a["name"], "textarea")

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea.value += data

    def handle_endtag(self, tag):
        if tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


# Downloads and feeds are read elsewhere (tests/test_script_notes.py); crawling them would only
# add audit events and time. So would the compliance drill-downs and the audit log's filters:
# pages of read-only tables with no form.
NOT_CRAWLED = re.compile(r"\.(pdf|csv|db|jpg|svg|txt|webmanifest)$"
                         r"|^/(static|api|sw\.js|logout|compliance/.+/episodes|admin/audit.)")


def crawl(client, seeds: list[str], limit: int = 150) -> tuple[list[str], list[Form]]:
    """Breadth first over same-site links from ``seeds``: the pages seen and their POST forms."""
    seen, queue, forms = [], list(seeds), []
    while queue and len(seen) < limit:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.append(url)
        response = client.get(url)
        assert response.status_code < 500, (url, response.status_code)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        assert_no_raw_markup(url, response.text)
        parser = _PageParser()
        parser.feed(response.text)
        for form in parser.forms:
            form.page = url
            form.action = urlsplit(urljoin(url, form.action or url))._replace(fragment="").geturl()
            form.action = form.action.removeprefix("http://localhost")
            forms.append(form)
        for href in parser.links:
            target = urlsplit(urljoin(url, href))
            if target.netloc not in ("", "localhost") or NOT_CRAWLED.search(target.path):
                continue
            link = target._replace(scheme="", netloc="", fragment="").geturl()
            if NOT_CRAWLED.search(link):
                continue
            if link not in seen and link not in queue:
                queue.append(link)
    return seen, forms


def endpoint_of(app, path: str) -> str:
    try:
        endpoint, _args = app.url_map.bind("localhost").match(urlsplit(path).path, method="POST")
    except HTTPException:
        return ""
    return endpoint


def assert_no_raw_markup(where: str, body: str) -> None:
    for raw in RAW:
        assert raw not in body, f"unescaped markup on {where}: …{body[max(0, body.find(raw) - 200):body.find(raw) + 80]}…"


# --- what the database holds -----------------------------------------------------------------

# Rows that a refused request may add: the audit trail (a refused break-glass or sign-off is
# itself an event) and the login throttle. Rows already there must still never change, except
# the audit chain's head, which moves with every event.
APPEND_ONLY = {"audit_events", "login_failures"}
MOVING = {"audit_head"}


_TABLES = {}


def snapshot(engine) -> dict[str, list[str]]:
    """Every row of every table (reflected once per database), as comparable text."""
    if engine.url not in _TABLES:
        metadata = MetaData()
        metadata.reflect(engine)
        _TABLES[engine.url] = [t for t in metadata.sorted_tables
                               if t.name not in MOVING and t.name != "alembic_version"]
    with engine.connect() as conn:
        return {table.name: sorted(repr(tuple(row)) for row in conn.execute(select(table)))
                for table in _TABLES[engine.url]}


def assert_unchanged(before: dict, after: dict, where: str) -> None:
    for table, rows in before.items():
        if table in APPEND_ONLY:
            lost = set(rows) - set(after[table])
            assert not lost, f"{where} was refused but changed {table}: {sorted(lost)[:3]}"
        else:
            assert after[table] == rows, (
                f"{where} was refused but changed {table}: "
                f"gone {sorted(set(rows) - set(after[table]))[:2]}, "
                f"new {sorted(set(after[table]) - set(rows))[:2]}")


# --- the cast ----------------------------------------------------------------------------------

POLICE = {"agency": "Springfield PD", "phone": "417-555-0100", "report_number": "R-1",
          "officer": "Officer Diaz", "reported_by": "Caseworker"}


@pytest.fixture
def scene(world, policies, make_episode, make_child, make_user, clock):
    """Every form has something to act on: an open episode with a step recorded; a child with no
    episode (the "missing" form); a child at an unapproved address awaiting review; a handover
    to acknowledge; a child found but not yet back (the "returned" form); and, for the
    supervisor, a stage submitted for review."""
    w = world
    w.episode = make_episode(w.child_a, w.cw_a, t0=NOW - timedelta(hours=3))
    w.calm = make_child(w.cw_a, "A-2", first_name="Cora", last_name="Calm")
    w.away = make_child(w.cw_a, "A-3", first_name="Dina", last_name="Away")
    w.handed = make_child(w.cw_a2, "A-4", first_name="Evan", last_name="Handed")
    w.found = make_child(w.cw_a, "A-5", first_name="Fay", last_name="Found")
    w.found_episode = make_episode(w.found, w.cw_a, t0=NOW - timedelta(hours=6))
    with db.writing() as s:
        cw_a = s.get(User, w.cw_a.id)
        record_item(s, s.get(Episode, w.episode.id), "report_law_enforcement", cw_a,
                    outcome="done", done_at=NOW - timedelta(hours=2), recorded_at=None,
                    raw_evidence=POLICE, reason="", client_uuid=str(uuid.uuid4()))
        change_status(s, s.get(Child, w.away.id), cw_a, "unapproved_location_known",
                      NOW - timedelta(hours=1), note="Staying with her aunt",
                      location=UnapprovedLocation("12 Elm St", "Aunt May", "Visited"))
        reassign_child(s, s.get(Child, w.handed.id), cw_a, s.get(User, w.admin.id), "Leave")
        mark_located(s, s.get(Episode, w.found_episode.id), cw_a, located_at=NOW - timedelta(hours=2),
                     located_where="in_state", located_place="A friend's flat", located_by="Police",
                     status="located_pending_return", note="Picked up by the police")
    return w


def submit_initial_stage(w) -> None:
    with db.writing() as s:
        stage = s.scalars(select(ReviewStage).where(ReviewStage.episode_id == w.episode.id,
                                                     ReviewStage.stage == "initial_response")).first()
        reasons = {view.spec.key: "Waiting on others" for view in open_steps(stage)}
        submit_stage(s, stage, s.get(User, w.cw_a.id), reasons)


def seeds_for(w, role: str) -> list[str]:
    e, a = w.episode.id, w.child_a.id
    common = ["/", "/caseload", "/work", f"/children/{a}", f"/episodes/{e}", f"/episodes/{e}/review",
              f"/children/{w.calm.id}", f"/children/{w.away.id}", f"/children/{a}/profile",
              f"/episodes/{e}/packet?details=ask"]
    return {
        "anonymous": ["/login"],
        "caseworker": [*common, f"/children/{w.calm.id}/missing", f"/episodes/{e}/located",
                       f"/episodes/{w.found_episode.id}/returned",
                       f"/episodes/{e}/information", f"/children/{a}/photos"],
        "supervisor": [*common, "/reviews", f"/children/{a}/prevention"],
        "on_call": ["/", "/work", "/on-call", f"/children/{a}/break-glass"],
        "administrator": ["/admin/users", f"/admin/children/{a}/reassign", "/admin/roster",
                          "/admin/history", "/admin/audit"],
    }[role]


def actor_of(w, role: str):
    return {"caseworker": w.cw_a, "supervisor": w.sup_a, "on_call": w.oncall,
            "administrator": w.admin, "anonymous": None}[role]

# Forms that end what the others act on go last (found, back in care, custody released).
LAST = ("checklists.located", "checklists.returned", "checklists.release", "admin.account_action")


def display_pages(w) -> list[str]:
    e, a = w.episode.id, w.child_a.id
    return ["/caseload", f"/children/{a}", f"/episodes/{e}", f"/episodes/{e}/contacts",
            f"/episodes/{e}/steps/report_law_enforcement", f"/episodes/{e}/record",
            f"/episodes/{e}/review", f"/children/{a}/profile", f"/episodes/{e}/packet?details=skip",
            f"/children/{w.away.id}", "/reviews", "/work"]

