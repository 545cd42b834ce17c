"""Browser fixtures: the real server under gunicorn, and Chromium held like a phone.

The server is started the way an operator starts it (`fieldapp init`, then gunicorn with more than
one worker), so these tests see what a caseworker sees: the migrations, the demo data, the
security headers and the multi-process SQLite set-up, not the test client's shortcuts.
"""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
AXE_SCRIPT = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# An ordinary phone held upright (an iPhone 12-15 sized screen).
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}
BLOCKING_IMPACTS = {"serious", "critical"}
SERVER_START_SECONDS = 30

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _parse_demo_logins(text: str) -> dict[str, str]:
    """Username to password, from `fieldapp demo`'s lines: role, username, password, (name)."""
    passwords = {}
    for line in text.splitlines():
        words = line.split()
        if line.startswith(" ") and len(words) >= 4 and words[3].startswith("("):
            passwords[words[1]] = words[2]
    return passwords


def _gunicorn_command(address: str) -> list[str]:
    command = [str(VENV_BIN / "gunicorn"), "-w", "2", "-b", address]
    # Since 25.1 gunicorn opens a control socket at one fixed path per user, which two test runs
    # (or a test run and `make run`) would fight over; older versions have no such socket or flag.
    release = tuple(int(part) for part in version("gunicorn").split(".")[:2] if part.isdigit())
    if release >= (25, 1):
        command.append("--no-control-socket")
    return command + ["fieldapp:create_app()"]


def _server_environment(instance_path: Path, database_path: Path) -> dict[str, str]:
    # Settings from the developer's shell (a debug flag, another database) must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDAPP_")}
    env.update(FIELDAPP_INSTANCE_PATH=str(instance_path),
               FIELDAPP_DATABASE_URL=f"sqlite:///{database_path}",
               FIELDAPP_SECRET_KEY=secrets.token_hex(32),
               FIELDAPP_AUDIT_KEY=secrets.token_hex(32))
    return env


def _wait_until_serving(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/login", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within {SERVER_START_SECONDS} s")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    instance_path = tmp_path_factory.mktemp("live-instance")
    database_path = instance_path / "fieldapp.sqlite3"
    env = _server_environment(instance_path, database_path)

    init = subprocess.run([str(VENV_BIN / "fieldapp"), "init"], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
    if init.returncode != 0:
        pytest.fail(f"`fieldapp init` failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
    passwords = _parse_demo_logins((instance_path / "demo-logins.txt").read_text())
    assert "caseworker" in passwords, "demo-logins.txt has no caseworker login"

    address = f"127.0.0.1:{_free_port()}"
    url = f"http://{address}"
    log_path = instance_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(_gunicorn_command(address), env=env, cwd=PROJECT_ROOT,
                                  stdout=subprocess.DEVNULL, stderr=log)
    try:
        try:
            _wait_until_serving(url, server)
        except RuntimeError as problem:
            print(log_path.read_text(errors="replace"), file=sys.stderr)
            pytest.fail(f"The live server did not start: {problem} (log above)")
        yield LiveServer(url, instance_path, database_path, passwords)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _phone_context(browser: Browser, live_server: LiveServer, *,
                   bypass_csp: bool) -> BrowserContext:
    context = browser.new_context(base_url=live_server.url, bypass_csp=bypass_csp, **PHONE)
    # Fail in seconds, not Playwright's default 30, so a broken page does not stall the suite.
    context.set_default_timeout(10_000)
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    return context


@pytest.fixture
def page(browser, live_server) -> Iterator[Page]:
    """A fresh phone with no cookies. CSP is bypassed so that axe can be injected into pages."""
    context = _phone_context(browser, live_server, bypass_csp=True)
    yield context.new_page()
    context.close()


@pytest.fixture
def new_phone(browser, live_server) -> Iterator[Callable[[], Page]]:
    """``new_phone()``: one more fresh phone with its own cookies, so that a second user can act
    in the same story without logging the first one out. All are closed after the test."""
    contexts: list[BrowserContext] = []

    def open_phone() -> Page:
        context = _phone_context(browser, live_server, bypass_csp=True)
        contexts.append(context)
        return context.new_page()
    yield open_phone
    for context in contexts:
        context.close()


@pytest.fixture
def strict_page(browser, live_server) -> Iterator[Page]:
    """A fresh phone that enforces the app's CSP, so violations really fire (no axe here)."""
    context = _phone_context(browser, live_server, bypass_csp=False)
    yield context.new_page()
    context.close()


def _assert_no_csp_violations(page: Page) -> None:
    violations = page.evaluate("window.__cspViolations || []")
    assert violations == [], f"CSP violations on {page.url}: {violations}"


def _assert_accessible(page: Page) -> None:
    """No serious or critical axe violation on the page as it stands now."""
    # After a boosted navigation the document, and so axe, is still there.
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        if not AXE_SCRIPT.exists():
            pytest.fail(f"{AXE_SCRIPT} is missing: run `make install`")
        page.add_script_tag(path=AXE_SCRIPT)
    violations = page.evaluate(RUN_AXE)
    blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
    for v in violations:
        if v not in blocking:
            print(f"axe (not blocking) on {page.url}: {v['impact']} {v['id']}: {v['help']}")
    assert not blocking, f"axe found serious problems on {page.url}:\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>\n    at "
        + "\n    at ".join(v["targets"]) for v in blocking)


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
