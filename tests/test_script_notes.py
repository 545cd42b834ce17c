"""Notes containing markup show as text everywhere (issue 8, Security 5).

Every free-text field the caseworker, the supervisor, on-call and the administrator can fill is
found by crawling their pages (tests/hostile_forms.py), and filled with markup. Then: every
page shows it escaped and never as markup; the record PDF, the report packet (PDF and the text
for NCMEC's form) and the SQLite extract hold it as the literal text; and the CSV downloads hold
a child's name written as markup and a formula as text, the formula neutralised (fieldapp.csv_safe).
tests/test_pdf.py and tests/test_exports.py cover one step note and one name; this covers them all.
"""
from __future__ import annotations

import csv
import io
import re
import sqlite3
from datetime import timedelta

import pytest
from markupsafe import escape
from pypdf import PdfReader
from werkzeug.datastructures import MultiDict

from hostile_forms import (LAST, assert_no_raw_markup, crawl, endpoint_of, seeds_for,
                           submit_initial_stage)
from hostile_forms import scene  # noqa: F401 (a fixture)
from helpers import NOW, PASSWORD

NOTE = '<script>alert("x")</script> "><img src=x onerror=alert(1)>'
ESCAPED = str(escape(NOTE))
FORMULA = '=HYPERLINK("http://evil.example","open")'
FILLED_BY_KIND = {"datetime-local": "2026-03-02T13:30", "date": "2026-03-01", "number": "3",
                  "tel": "417-555-0199", "email": "a@example.org", "password": PASSWORD}
# Buttons that would end the missing episode (and with it the packet), undo what the others
# wrote, take the children from the caseworker, or end the test's session; and uploads, which
# carry no free text typed on the page.
NOT_FILLED = {"checklists.located", "checklists.returned", "checklists.release", "reviews.sign_off", "admin.account_action", "admin.reassign", "admin.set_team",
              "auth.logout", "auth.log_out_everywhere", "profiles.add_photo", "admin.roster",
              "admin.import_history"}


# What a worker types in a text field that is not free text, by a word in its name, for a
# second try when the first was refused beside that field.
TYPED = (("phone", "417-555-0199"), ("_at", "2026-03-02T13:30"), ("date", "2026-03-01"),
         ("_on", "2026-03-01"), ("height", "160"), ("weight", "50"), ("number", "R-1"))


def filled(form, refused: set[str] = frozenset()) -> MultiDict:
    """The form as a careful worker fills it, with NOTE in every free-text field; the fields in
    ``refused`` get a typed value, or the next choice."""
    pairs = []
    for f in form.fields.values():
        if f.kind in ("select", "radio", "checkbox"):
            choices = [o for o in f.options if o] or [""]
            pairs.append((f.name, choices[min(1, len(choices) - 1)] if f.name in refused else choices[0]))
        elif f.name in refused and f.kind in ("text", "textarea"):
            pairs.append((f.name, next((v for word, v in TYPED if word in f.name), "Seen at noon")))
        elif f.kind in ("hidden", "submit"):
            pairs.append((f.name, f.value))
        elif f.kind == "datetime-local" and f.name in refused:
            pairs.append((f.name, "2026-03-02T07:00"))  # before the absence was discovered
        elif f.kind in FILLED_BY_KIND:
            pairs.append((f.name, FILLED_BY_KIND[f.kind]))
        elif f.kind in ("text", "textarea", "search"):
            pairs.append((f.name, NOTE))
    return MultiDict(pairs)


def fill_every_form(app, client, forms) -> set[str]:
    """Post every form once (the ones that end the episode last); the endpoints that stored."""
    stored, done = set(), set()
    refused = {}  # kept for a failing run's locals
    for form in sorted(forms, key=lambda f: endpoint_of(app, f.action) in LAST):
        endpoint = endpoint_of(app, form.action)
        if not endpoint or endpoint in NOT_FILLED or form.action in done:
            continue
        done.add(form.action)
        response = client.post(form.action, data=filled(form))
        if response.status_code == 422:  # once more, with the refused fields typed as asked
            refused_fields = set(re.findall(r'id="([\w-]+)-error"', response.text))
            response = client.post(form.action, data=filled(form, refused_fields))
        assert response.status_code < 500, form.action
        if response.mimetype == "text/html":
            assert_no_raw_markup(form.action, response.text)
        if response.status_code in (200, 302, 303):
            stored.add(endpoint)
        else:
            refused[form.action] = response.status_code
    return stored


@pytest.fixture
def noted(app, scene, client, login, make_child, make_episode):
    """Every role fills every free-text field it can with NOTE; a child is named with markup and
    a formula, and goes missing."""
    w = scene
    w.named = make_child(w.cw_a, FORMULA, first_name=NOTE, last_name=FORMULA)
    make_episode(w.named, w.cw_a, t0=NOW - timedelta(hours=5))
    w.stored = {}
    # The administrator last: a new team or user must not take the children from caseworker A.
    for role in ("caseworker", "supervisor", "on_call", "administrator"):
        if role == "supervisor":
            submit_initial_stage(w)
        login({"caseworker": w.cw_a, "supervisor": w.sup_a, "on_call": w.oncall,
               "administrator": w.admin}[role])
        pages, forms = crawl(client, seeds_for(w, role))
        w.stored[role] = fill_every_form(app, client, forms)
    return w


def check_every_role_stored_markup(noted):
    assert {"checklists.record_step", "checklists.contacts", "checklists.open_missing",
            "profiles.edit_section", "profiles.packet_page"} <= noted.stored["caseworker"]
    assert {"reviews.send_back", "reviews.contact_check"} <= noted.stored["supervisor"]
    assert "cases.break_glass" in noted.stored["on_call"]


def check_pages_show_the_notes_as_text(noted, client, login, role):
    login({"caseworker": noted.cw_a, "supervisor": noted.sup_a, "administrator": noted.admin,
           "auditor": noted.auditor}[role])
    seeds = (seeds_for(noted, role) if role != "auditor"
             else ["/", "/overview", "/compliance", "/admin/audit"])
    pages, _forms = crawl(client, seeds)  # asserts no raw markup on every page it reads
    showing = [url for url in pages if ESCAPED in client.get(url).text]
    e, a = noted.episode.id, noted.child_a.id
    expected = {"caseworker": {f"/children/{noted.named.id}", f"/episodes/{e}/contacts",
                               f"/episodes/{e}/record", f"/episodes/{e}/review",
                               f"/children/{a}/profile", "/caseload"},
                "supervisor": {f"/episodes/{e}/review", f"/episodes/{e}/record", "/caseload"},
                "administrator": {f"/children/{noted.named.id}"},
                "auditor": set()}[role]
    assert expected <= set(showing), f"escaped notes not shown on {expected - set(showing)}"


def pdf_text(response) -> str:
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    return " ".join(" ".join((page.extract_text() or "").split())
                    for page in PdfReader(io.BytesIO(response.data)).pages)


def check_pdfs_and_ncmec_text(noted, client, login):
    login(noted.cw_a)
    e = noted.episode.id
    record = pdf_text(client.get(f"/episodes/{e}/record.pdf"))
    assert record.count(NOTE) >= 3  # step evidence, a reason, the contact log at least
    packet = client.get(f"/episodes/{e}/packet.pdf")
    assert NOTE in pdf_text(packet)  # the last sighting and the profile
    text = client.get(f"/episodes/{e}/packet.txt")
    assert text.mimetype == "text/plain" and text.headers["X-Content-Type-Options"] == "nosniff"
    assert NOTE in text.text and ESCAPED not in text.text  # plain text: neither markup nor escaped


def check_csv_downloads(noted, client, login):
    login(noted.sup_a)
    for url in ("/compliance/M1/episodes.csv", "/compliance/reconciliation.csv"):
        response = client.get(url)
        assert response.status_code == 200 and response.mimetype == "text/csv", url
        cells = [cell for row in csv.reader(io.StringIO(response.text.lstrip("\ufeff")))
                 for cell in row]
        assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))], url
        if url.startswith("/compliance/M1"):
            assert f"{NOTE} {FORMULA}" in cells and "'" + FORMULA in cells  # name; case id


def check_sqlite_extract(noted, runner, tmp_path):
    path = tmp_path / "extract.db"
    result = runner.invoke(args=["export-sqlite", str(path)])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(path) as out:
        tables = [name for (name,) in out.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        holding = set()
        for table in tables:
            columns = [row[1] for row in out.execute(f"PRAGMA table_info('{table}')")]
            for column in columns:
                hits = out.execute(f"SELECT count(*) FROM '{table}' WHERE instr(\"{column}\", ?) > 0",
                                   (NOTE,)).fetchone()[0]
                if hits:
                    holding.add(table)
                assert not out.execute(f"SELECT count(*) FROM '{table}' WHERE instr(\"{column}\", ?) > 0",
                                       (ESCAPED,)).fetchone()[0], (table, column)  # not escaped twice
    assert {"children", "contacts", "step_entries"} <= holding


def test_markup_in_every_free_text_field_shows_as_text_everywhere(noted, client, login, runner,
                                                                   tmp_path):
    """One test, as building the notes takes most of its time: each check says what it covers."""
    check_every_role_stored_markup(noted)
    for role in ("caseworker", "supervisor", "administrator", "auditor"):
        check_pages_show_the_notes_as_text(noted, client, login, role)
    check_pdfs_and_ncmec_text(noted, client, login)
    check_csv_downloads(noted, client, login)
    check_sqlite_extract(noted, runner, tmp_path)
