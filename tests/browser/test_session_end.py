"""A session that ends while a form is open (issue 8, Security 4), in Chromium against the real
server: a contact typed into the log is kept on the phone, not lost to the login form, and is
sent after the next login.

The session is ended from another phone with "log out everywhere", which leaves this phone its
cookie and the page its CSRF token, as a timed-out session does; the server answers both alike
(fieldapp/session_policy.py; the timeouts themselves are tested in tests/test_sessions.py with
the app's clock).
"""
from __future__ import annotations

import re
import sqlite3
import time
from contextlib import closing

import pytest
from playwright.sync_api import expect

from .conftest import log_in

pytestmark = pytest.mark.browser

PERSON = "Session-end cousin (fictional)"
LEARNED = "Typed while the session ran out"


def contacts_logged(live_server, person: str) -> int:
    with closing(sqlite3.connect(f"file:{live_server.database_path}?mode=ro", uri=True)) as conn:
        return conn.execute("SELECT count(*) FROM search_contacts WHERE person = ?",
                            (person,)).fetchone()[0]


def end_every_session_from_another_phone(new_phone, live_server) -> None:
    other = new_phone()
    log_in(other, live_server)
    token = other.locator("form.logout input[name=csrf_token]").get_attribute("value")
    response = other.request.post("/account/log-out-everywhere", form={"csrf_token": token},
                                  max_redirects=0)
    assert response.status == 303


def test_a_contact_sent_after_the_session_ended_waits_on_the_phone_for_the_next_login(
        page, new_phone, live_server):
    log_in(page, live_server)
    listed = page.request.get("/api/v1/offline").json()
    contacts = next(path for path in listed["pages"] if re.fullmatch(r"/episodes/\d+/contacts", path))
    page.goto(contacts)
    page.get_by_label("Person or office", exact=True).fill(PERSON)
    page.get_by_label("Relationship", exact=True).select_option(index=1)
    page.get_by_label("How", exact=True).select_option("phone")
    page.get_by_role("radio", name="Tried, not reached").check()
    page.get_by_label("What was learned", exact=True).fill(LEARNED)

    end_every_session_from_another_phone(new_phone, live_server)  # while the form is open
    page.get_by_role("button", name="Log the contact").click()

    expect(page.get_by_text("your session has ended. Log in again to send it.")).to_be_visible()
    expect(page).to_have_url(re.compile(re.escape(contacts) + "$"))  # not taken to the login form
    expect(page.locator("[data-outbox-badge]")).to_contain_text("Log in again to send 1 saved item")
    assert contacts_logged(live_server, PERSON) == 0

    log_in(page, live_server)  # the page after the login sends what waited
    deadline = time.monotonic() + 15
    while contacts_logged(live_server, PERSON) == 0 and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert contacts_logged(live_server, PERSON) == 1
    expect(page.locator("[data-outbox-badge] [data-outbox-count]")).to_have_text("0")
