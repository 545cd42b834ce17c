"""A caseworker on a phone: log in, find a child on the caseload, open the child (issue 2)."""
from __future__ import annotations

import re
import sqlite3
from contextlib import closing

import pytest
from playwright.sync_api import Page, expect

from .conftest import log_in

pytestmark = pytest.mark.browser

PHONE_WIDTH = 390


def open_caseload(page: Page) -> None:
    """A caseworker lands on "My work" after login; the caseload is one tap away in the nav."""
    expect(page.get_by_role("heading", level=1, name="My work")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Caseload").click()
    expect(page.get_by_role("heading", level=1, name="My caseload")).to_be_visible()


def assert_no_sideways_scroll(page: Page) -> None:
    widths = page.evaluate("""() => ({scrollWidth: document.documentElement.scrollWidth,
                                      innerWidth: window.innerWidth})""")
    # A mobile browser zooms out to fit a too-wide page, widening innerWidth to match scrollWidth,
    # so the viewport must also still be the phone's own width.
    assert widths["scrollWidth"] <= widths["innerWidth"] == PHONE_WIDTH, (
        f"{page.url} scrolls sideways on a {PHONE_WIDTH} px phone: {widths}")


def child_of(live_server, username: str) -> tuple[int, str]:
    """The id and full name of a demo child on ``username``'s caseload, read from the database."""
    with closing(sqlite3.connect(live_server.database_path)) as conn:
        row = conn.execute(
            "SELECT children.id, children.first_name || ' ' || children.last_name FROM children"
            " JOIN users ON users.id = children.caseworker_id WHERE users.username = ?"
            " ORDER BY children.id LIMIT 1", (username,)).fetchone()
    assert row, f"the demo data gave {username} no children"
    return row


def test_caseworker_opens_a_child_from_the_caseload(page: Page, live_server, check_page):
    page.goto("/login")
    expect(page.get_by_role("heading", level=1, name="Log in")).to_be_visible()
    check_page(page)

    log_in(page, live_server, "caseworker")
    open_caseload(page)
    assert_no_sideways_scroll(page)
    theirs = child_of(live_server, "caseworker2")[1]
    expect(page.locator(".child-link .name", has_text=theirs)).to_have_count(0)
    check_page(page)

    name = page.locator(".child-link .name").first.inner_text()
    # A full page load would drop this marker; a boosted (htmx) navigation keeps the document.
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("link", name=re.compile(rf"^{re.escape(name)}\b")).click()
    expect(page.get_by_role("heading", level=1, name=name, exact=True)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/children/\d+$"))
    assert page.evaluate("window.__sameDocument === true"), "the child link did a full page load"
    history = page.get_by_role("region", name="Status history")
    expect(history).to_be_visible()
    expect(history.get_by_role("listitem").first).to_contain_text("set by Casey Morgan")
    assert_no_sideways_scroll(page)
    check_page(page)


def test_child_on_another_caseload_is_not_found(page: Page, live_server, check_page):
    child_id, name = child_of(live_server, "caseworker2")
    log_in(page, live_server, "caseworker")
    open_caseload(page)

    response = page.goto(f"/children/{child_id}")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1, name="Not found")).to_be_visible()
    expect(page.get_by_text(name)).to_have_count(0)
    check_page(page)


def test_pages_obey_the_content_security_policy(page: Page, live_server, check_csp):
    """htmx and the pages break none of the CSP's rules."""
    log_in(page, live_server, "caseworker")
    open_caseload(page)
    check_csp(page)
    # htmx itself must run under the policy: a blocked htmx would fall back to a full page load.
    page.evaluate("window.__sameDocument = true")
    page.locator(".child-link").first.click()
    expect(page.get_by_role("region", name="Status history")).to_be_visible()
    assert page.evaluate("window.__sameDocument === true"), "htmx did not boost the link"
    check_csp(page)
