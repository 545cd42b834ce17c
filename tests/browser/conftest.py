"""Browser fixtures: the real server under gunicorn, and Chromium held like a phone.

The server is started the way an operator starts it (`fieldapp init`, then gunicorn with more than
one worker), so these tests see what a caseworker sees: the migrations, the demo data, the
security headers and the multi-process SQLite set-up, not the test client's shortcuts.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from live import PROJECT_ROOT, Server, init_instance, server_environment

AXE_SCRIPT = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# An ordinary phone held upright (an iPhone 12-15 sized screen).
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}
BLOCKING_IMPACTS = {"serious", "critical"}

# Runs before any page script in every document, so a violation during load is caught too.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push({directive: event.violatedDirective, blocked: event.blockedURI,
                               source: event.sourceFile, line: event.lineNumber,
                               sample: event.sample});
});
"""

# Only what a failure report needs: axe's full result is large and slow to ship out of the page.
RUN_AXE = """
async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    targets: v.nodes.map((node) => node.target.join(" ")),
  }));
}
"""


@dataclass(frozen=True)
class LiveServer:
    url: str
    instance_path: Path
    database_path: Path
    passwords: dict[str, str]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    instance_path = tmp_path_factory.mktemp("live-instance")
    database_path = instance_path / "fieldapp.sqlite3"
    env = server_environment(instance_path, f"sqlite:///{database_path}")
    try:
        passwords = init_instance(env)
    except RuntimeError as problem:
        pytest.fail(str(problem))
    assert "caseworker" in passwords, "demo-logins.txt has no caseworker login"
    server = Server(env)
    try:
        server.start()
    except RuntimeError as problem:
        print((instance_path / "gunicorn.log").read_text(errors="replace"), file=sys.stderr)
        pytest.fail(f"The live server did not start: {problem} (log above)")
    try:
        yield LiveServer(server.url, instance_path, database_path, passwords)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-packages`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def phone_context(browser: Browser, url: str) -> BrowserContext:
    """A phone-sized browser context on the server at ``url``, enforcing the app's CSP.

    Every context enforces it, so that the violation listener below catches any page that breaks
    it; axe is put in through DevTools (`load_axe`), which the page's policy does not govern."""
    context = browser.new_context(base_url=url, **PHONE)
    # Fail in seconds, not Playwright's default 30, so a broken page does not stall the suite.
    context.set_default_timeout(10_000)
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    return context


@pytest.fixture
def page(browser, live_server) -> Iterator[Page]:
    """A fresh phone with no cookies."""
    context = phone_context(browser, live_server.url)
    yield context.new_page()
    context.close()


@pytest.fixture
def new_phone(browser, live_server) -> Iterator[Callable[[], Page]]:
    """``new_phone()``: one more fresh phone with its own cookies, so that a second user can act
    in the same story without logging the first one out. All are closed after the test."""
    contexts: list[BrowserContext] = []

    def open_phone() -> Page:
        context = phone_context(browser, live_server.url)
        contexts.append(context)
        return context.new_page()
    yield open_phone
    for context in contexts:
        context.close()


def log_in(page: Page, server, username: str = "caseworker") -> None:
    """Log in through the form with the demo password ``server.passwords`` holds, and wait until
    the page says who is logged in (the meta tag offline.js reads)."""
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(server.passwords[username])
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("meta[name=fieldapp-user]")).not_to_have_attribute("content", "")


def _assert_no_csp_violations(page: Page) -> None:
    violations = page.evaluate("window.__cspViolations || []")
    assert violations == [], f"CSP violations on {page.url}: {violations}"


def _assert_accessible(page: Page) -> None:
    """No serious or critical axe violation on the page as it stands now."""
    load_axe(page)
    violations = page.evaluate(RUN_AXE)
    blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
    for v in violations:
        if v not in blocking:
            print(f"axe (not blocking) on {page.url}: {v['impact']} {v['id']}: {v['help']}")
    assert not blocking, f"axe found serious problems on {page.url}:\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>\n    at "
        + "\n    at ".join(v["targets"]) for v in blocking)


def load_axe(page: Page) -> None:
    """Put axe into a page that enforces the CSP: DevTools' evaluation is outside the page's
    policy, so nothing the page records is axe's doing. Read the CSP record before this."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        if not AXE_SCRIPT.exists():
            pytest.fail(f"{AXE_SCRIPT} is missing: run `make install`")
        page.evaluate(AXE_SCRIPT.read_text())


@pytest.fixture
def check_csp():
    """``check_csp(page)`` fails the test if the page recorded any CSP violation."""
    return _assert_no_csp_violations


@pytest.fixture
def check_page():
    """``check_page(page)``: no CSP violation recorded and no serious or critical axe finding."""
    def check(page: Page) -> None:
        _assert_no_csp_violations(page)
        _assert_accessible(page)
    return check
