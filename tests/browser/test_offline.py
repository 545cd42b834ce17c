"""Offline work on a phone (DESIGN §8), in Chromium against the real server under gunicorn.

`context.set_offline(True)` cuts the page's requests and the service worker's own fetches alike
(checked first, in `test_going_offline_cuts_the_service_worker_too`), so the phone here really
has no network: everything it shows comes from its caches, and everything it records waits in
IndexedDB until the connection returns. The server runs from this module's own fixture, because
one test restarts it with another release label on the same address, as a deployment would.
"""
from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from live import Server as LiveProcess
from live import init_instance, server_environment

from .conftest import CHROMIUM, log_in, phone_context

pytestmark = pytest.mark.browser

RECORD = "Record and go to the next step"
SAVED = "Saved on this phone, not yet sent"
# Three steps that take short answers, and what the caseworker types into each.
STEPS = {
    "inform_and_obtain": {"ev_who": "School counselor (fictional)",
                          "ev_learned": "Offline note: seen near the library"},
    "protective_alert": {"ev_reference": "PSA-OFFLINE-7"},
    "notify_parents": {"ev_name": "Mother, D. Lane (fictional)", "ev_method": "Phone",
                       "ev_result": "Told, offline"},
}
CONTACT = {"person": "Offline aunt (fictional)", "learned": "Offline contact: no news"}

# Everything the phone holds, read from inside the page: cache names, cached URLs and bodies,
# and every IndexedDB store.
PHONE_CONTENTS = """
async () => {
  const caches_ = {};
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    caches_[name] = [];
    for (const request of await cache.keys()) {
      const response = await cache.match(request);
      caches_[name].push({url: request.url, body: await response.text()});
    }
  }
  const stores = {};
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open("fieldapp");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  for (const name of db.objectStoreNames) {
    stores[name] = await new Promise((resolve) => {
      const request = db.transaction(name).objectStore(name).getAll();
      request.onsuccess = () => resolve(request.result);
    });
  }
  db.close();
  return {caches: caches_, stores};
}
"""
OPS = "async () => (await window.FieldappStore.opsFor(Number(document.querySelector('meta[name=fieldapp-user]').content)))"


class Server(LiveProcess):
    """gunicorn on one fixed address, restartable with another release label, on a SQLite file
    the tests read directly."""

    def __init__(self, instance_path):
        self.instance_path = instance_path
        self.database_path = instance_path / "fieldapp.sqlite3"
        super().__init__(server_environment(instance_path, f"sqlite:///{self.database_path}"))
        self.passwords: dict[str, str] = {}

    def init(self) -> None:
        self.passwords = init_instance(self.env)

    def start(self, release: str) -> None:
        self.env["FIELDAPP_RELEASE"] = release
        super().start()

    def query(self, sql: str, *params) -> list[sqlite3.Row]:
        with closing(sqlite3.connect(f"file:{self.database_path}?mode=ro", uri=True)) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("offline-instance"))
    running.init()
    running.start("release-1")
    yield running
    running.stop()


@pytest.fixture
def phone(browser, server) -> Iterator[BrowserContext]:
    """A fresh phone: no cookies, no service worker, no caches, no IndexedDB."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing")
    context = phone_context(browser, server.url)
    yield context
    context.close()


# --- helpers -------------------------------------------------------------------------------

def eventually(page: Page, script: str, arg=None, seconds: float = 15) -> bool:
    """Whether ``script`` becomes true in the page within ``seconds``. (Playwright's
    wait_for_function evaluates strings, which the app's CSP forbids on a strict phone;
    page.evaluate is not affected.)"""
    deadline = time.monotonic() + seconds
    while not page.evaluate(script, arg):
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(100)
    return True


def poll(page: Page, script: str, arg=None, seconds: float = 15) -> None:
    """Wait until ``script`` is true in the page, or fail."""
    if not eventually(page, script, arg, seconds):
        pytest.fail(f"still false after {seconds} s: {script}")


def wait_until_offline_ready(page: Page) -> None:
    """The service worker controls the page and the user's pages are in the phone's cache."""
    poll(page, "() => !!navigator.serviceWorker.controller")
    expect(page.locator("html")).to_have_attribute("data-offline-pages", re.compile(r"^\d+$"),
                                                   timeout=30_000)


def open_episode(page: Page, server: Server) -> int:
    """The first of the caseworker's open episodes that is still missing: its overview."""
    listed = page.request.get("/api/v1/offline").json()
    episode_ids = sorted({int(m.group(1)) for m in map(re.compile(r"^/episodes/(\d+)$").match,
                                                       listed["pages"]) if m})
    for episode_id in episode_ids:
        if f"/episodes/{episode_id}/steps/inform_and_obtain" in listed["pages"] and \
                f"/episodes/{episode_id}/contacts" in listed["pages"]:
            page.goto(f"/episodes/{episode_id}")
            return episode_id
    pytest.fail(f"no open missing episode in {listed}")


def badge_count(page: Page):
    return page.locator("[data-outbox-badge] [data-outbox-count]")


def record_step_offline(page: Page, key: str, values: dict[str, str],
                        outcome: str | None = None) -> None:
    """From the overview, open a step (from the phone's cache) and record it into the outbox."""
    page.locator(f"li[data-step-key='{key}'] a").click()
    expect(page).to_have_url(re.compile(rf"/steps/{key}$"))
    wizard = page.locator("#wizard")
    if outcome:
        wizard.get_by_role("radio", name=outcome, exact=True).check()
    for name, value in values.items():
        field = wizard.locator(f"[name='{name}']")
        if field.evaluate("el => el.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    wizard.get_by_role("button", name=RECORD).click()
    expect(wizard.get_by_text(SAVED)).to_be_visible()
    expect(wizard.locator("form.step-form")).to_be_hidden()
    wizard.get_by_role("link", name="Back to the episode").click()
    expect(page).to_have_url(re.compile(r"/episodes/\d+$"))
    expect(page.locator(f"li[data-step-key='{key}']")).to_contain_text(SAVED)


def log_contact_offline(page: Page) -> None:
    page.get_by_role("link", name=re.compile(r"^Contact log \(\d+\)$")).click()
    expect(page.get_by_role("heading", level=1, name="Contact log")).to_be_visible()
    page.get_by_label("Person or office", exact=True).fill(CONTACT["person"])
    page.get_by_label("Relationship", exact=True).select_option(index=1)
    page.get_by_label("How", exact=True).select_option("phone")
    page.get_by_role("radio", name="Tried, not reached").check()
    page.get_by_label("What was learned", exact=True).fill(CONTACT["learned"])
    page.get_by_role("button", name="Log the contact").click()
    expect(page.get_by_text(SAVED)).to_be_visible()
    page.get_by_role("link", name="Back to the episode").click()
    expect(page).to_have_url(re.compile(r"/episodes/\d+$"))


def stored_time(text: str) -> datetime:
    """A time as fieldapp stores it in SQLite: naive UTC text."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def device_time(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def assert_stored_once(server: Server, ops: list[dict]) -> None:
    """Each op is in the database exactly once, with the phone's clock at the tap."""
    for op in ops:
        table = "step_entries" if op["kind"] == "step_entry" else "search_contacts"
        rows = server.query(f"SELECT recorded_at FROM {table} WHERE client_uuid = ?", op["uuid"])
        assert len(rows) == 1, f"{op['kind']} {op['uuid']} stored {len(rows)} times"
        assert stored_time(rows[0]["recorded_at"]) == device_time(op["recorded_at"])
        assert len(server.query("SELECT 1 FROM client_ops WHERE uuid = ?", op["uuid"])) == 1


# --- tests ---------------------------------------------------------------------------------

def test_going_offline_cuts_the_service_worker_too(phone, server):
    """The premise of every test below: offline, even the worker's own fetches fail."""
    page = phone.new_page()
    log_in(page, server)
    wait_until_offline_ready(page)
    phone.set_offline(True)
    assert page.evaluate("navigator.onLine") is False
    # A page the phone never kept: the worker's network attempt fails and it answers the offline page.
    page.goto("/caseload")
    expect(page.get_by_role("heading", level=1)).to_have_text("You are offline")
    phone.set_offline(False)


def test_offline_steps_and_contact_sync_exactly_once(phone, server, check_csp):
    page = phone.new_page()
    log_in(page, server)
    wait_until_offline_ready(page)
    episode_id = open_episode(page, server)
    title = page.get_by_role("heading", level=1).inner_text()
    child_name = title.split(":")[0]

    phone.set_offline(True)
    page.reload()
    # The shell and the open episode still work: the page, its styles and its scripts.
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    assert page.evaluate("typeof htmx") == "object"
    assert page.evaluate("getComputedStyle(document.querySelector('header.bar')).display") == "flex"

    for key, values in STEPS.items():
        record_step_offline(page, key, values)
    log_contact_offline(page)
    expect(badge_count(page)).to_have_text("4")
    ops = page.evaluate(OPS)
    assert sorted(op["kind"] for op in ops) == ["search_contact"] + ["step_entry"] * 3
    assert {op["episode_id"] for op in ops} == {episode_id}
    assert all(op["state"] == "queued" and op["policy_version"] for op in ops)
    nothing_yet = server.query("SELECT count(*) AS n FROM client_ops WHERE uuid IN (?, ?, ?, ?)",
                               *[op["uuid"] for op in ops])
    assert nothing_yet[0]["n"] == 0

    phone.set_offline(False)  # the "online" event starts the sync
    expect(badge_count(page)).to_have_text("0", timeout=15_000)
    assert_stored_once(server, ops)
    by_step = {op["step_key"]: op for op in ops if op["kind"] == "step_entry"}
    evidence = server.query("SELECT evidence FROM step_entries WHERE client_uuid = ?",
                            by_step["protective_alert"]["uuid"])[0]["evidence"]
    assert "PSA-OFFLINE-7" in evidence
    check_csp(page)

    # Log out: nothing of the case stays on the phone.
    page.get_by_role("button", name=re.compile("^Log out")).click()
    expect(page).to_have_url(re.compile(r"/login"))
    held = page.evaluate(PHONE_CONTENTS)
    assert not [name for name in held["caches"] if name.startswith("fieldapp-pages-")]
    for name, entries in held["caches"].items():
        for entry in entries:
            assert "/episodes/" not in entry["url"], (name, entry["url"])
            for secret in (child_name, "PSA-OFFLINE-7", CONTACT["person"], "Casey Morgan"):
                assert secret not in entry["body"], (name, entry["url"], secret)
    assert held["stores"]["ops"] == []
    dump = repr(held["stores"])
    for secret in (child_name, "PSA-OFFLINE-7", CONTACT["person"], CONTACT["learned"]):
        assert secret not in dump


def test_session_expired_offline_keeps_the_ops_until_login(phone, server):
    page = phone.new_page()
    log_in(page, server)
    wait_until_offline_ready(page)
    open_episode(page, server)
    phone.set_offline(True)
    record_step_offline(page, "protective_alert", {"ev_reference": "PSA-EXPIRED-1"})
    ops = page.evaluate(OPS)
    assert len(ops) == 1

    phone.clear_cookies()  # the session ends while the phone is offline
    phone.set_offline(False)
    badge = page.locator("[data-outbox-badge]")
    expect(badge).to_contain_text("Log in again to send 1 saved item", timeout=15_000)
    assert server.query("SELECT count(*) AS n FROM step_entries WHERE client_uuid = ?",
                        ops[0]["uuid"])[0]["n"] == 0
    assert len(page.evaluate(OPS)) == 1  # kept

    log_in(page, server)
    expect(badge_count(page)).to_have_text("0", timeout=15_000)
    assert_stored_once(server, ops)


def test_rejected_op_is_quarantined_then_fixed_or_discarded(phone, server, check_page):
    page = phone.new_page()
    log_in(page, server)
    wait_until_offline_ready(page)
    episode_id = open_episode(page, server)
    phone.set_offline(True)
    # "Tried, could not" needs a reason: two entries without one, which the server refuses.
    record_step_offline(page, "protective_alert", {}, outcome="Tried, could not")
    record_step_offline(page, "notify_parents", {}, outcome="Tried, could not")
    expect(badge_count(page)).to_have_text("2")
    phone.set_offline(False)
    badge = page.locator("[data-outbox-badge]")
    expect(badge).to_contain_text("2 need attention", timeout=15_000)
    ops = page.evaluate(OPS)
    assert {op["state"] for op in ops} == {"quarantined"}
    assert all(op["errors"].get("reason") for op in ops), ops
    for op in ops:
        assert not server.query("SELECT 1 FROM step_entries WHERE client_uuid = ?", op["uuid"])
    expect(page.locator("li[data-step-key='protective_alert']")).to_contain_text("Not accepted")

    badge.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Saved on this phone")
    quarantined = page.locator("[data-outbox-list=quarantined] > li")
    expect(quarantined).to_have_count(2)
    first = quarantined.filter(has_text="Protective")
    expect(first).to_contain_text("Refused: invalid")
    expect(first).to_contain_text(ops[0]["errors"]["reason"] if ops[0]["step_key"] == "protective_alert"
                                  else ops[1]["errors"]["reason"])
    check_page(page)

    # Fix one: a reason is given, and the corrected version is a new submit that is accepted.
    first.get_by_role("button", name="Fix").click()
    first.get_by_label("Reason").fill("No answer from the alert desk")
    first.get_by_role("button", name="Send the corrected version").click()
    expect(quarantined).to_have_count(1, timeout=15_000)
    expect(badge_count(page)).to_have_text("1", timeout=15_000)  # sent and accepted
    fixed = server.query("SELECT e.reason, e.client_uuid FROM step_entries e "
                         "WHERE e.reason = 'No answer from the alert desk'")
    assert len(fixed) == 1
    assert fixed[0]["client_uuid"] not in {op["uuid"] for op in ops}

    # Discard the other: it leaves the phone, and the server audits the discard (not its content).
    other = next(op for op in ops if op["step_key"] == "notify_parents")
    remaining = quarantined.first
    remaining.get_by_role("button", name="Discard").click()
    remaining.get_by_role("button", name="Discard for good").click()
    expect(page.locator("[data-outbox-list=quarantined]")).to_contain_text("Nothing here.")
    expect(badge_count(page)).to_have_text("0")
    audit = []
    for _ in range(50):
        audit = server.query("SELECT entity_id FROM audit_events WHERE action = 'outbox_discarded' "
                             "AND entity_id = ?", other["uuid"])
        if audit:
            break
        page.wait_for_timeout(200)
    assert len(audit) == 1
    assert not server.query("SELECT 1 FROM step_entries WHERE client_uuid = ?", other["uuid"])
    assert episode_id == other["episode_id"]


def test_logout_with_unsent_work_asks_first(phone, server):
    page = phone.new_page()
    log_in(page, server)
    wait_until_offline_ready(page)
    open_episode(page, server)
    phone.set_offline(True)
    record_step_offline(page, "protective_alert", {}, outcome="Tried, could not")
    phone.set_offline(False)
    expect(page.locator("[data-outbox-badge]")).to_contain_text("1 need attention", timeout=15_000)
    op = page.evaluate(OPS)[0]

    page.get_by_role("button", name=re.compile("^Log out")).click()
    dialog = page.get_by_role("dialog", name="Unsent work on this phone")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("1 saved item has not been sent")
    dialog.get_by_role("button", name="Send now").click()
    expect(dialog).to_contain_text("not accepted")  # still refused: the user must choose
    expect(page).not_to_have_url(re.compile(r"/login"))
    dialog.get_by_role("button", name="Discard 1 unsent").click()
    expect(page).to_have_url(re.compile(r"/login"))
    held = page.evaluate(PHONE_CONTENTS)
    assert held["stores"]["ops"] == [] and held["stores"]["discards"] == []
    assert not [name for name in held["caches"] if name.startswith("fieldapp-pages-")]
    assert len(server.query("SELECT 1 FROM audit_events WHERE action = 'outbox_discarded' "
                            "AND entity_id = ?", op["uuid"])) == 1


def test_offline_and_outbox_pages_are_accessible(phone, server, check_page):
    page = phone.new_page()
    page.goto("/offline")
    expect(page.get_by_role("heading", level=1)).to_have_text("You are offline")
    check_page(page)
    log_in(page, server)
    page.goto("/outbox")
    expect(page.locator("[data-outbox-persist]")).to_contain_text("saved work")
    expect(page.locator("[data-outbox-summary]")).to_contain_text("Nothing is waiting")
    check_page(page)


def test_new_worker_version_keeps_the_outbox(phone, server):
    page = phone.new_page()
    log_in(page, server)
    wait_until_offline_ready(page)
    open_episode(page, server)
    shell_before = [n for n in page.evaluate("caches.keys()") if n.startswith("fieldapp-shell-")]
    assert len(shell_before) == 1
    phone.set_offline(True)
    # One op the server will take, and one it will refuse (no reason), which must then stay on
    # the phone, content and all, across the change of worker.
    record_step_offline(page, "protective_alert", {"ev_reference": "PSA-UPGRADE-3"})
    record_step_offline(page, "notify_parents", {}, outcome="Tried, could not")
    ops = {op["step_key"]: op for op in page.evaluate(OPS)}

    # A new release ships while the phone is offline.
    server.stop()
    server.start("release-2")
    phone.set_offline(False)
    # Chromium activates the new worker once the old one is idle, which is sometimes only at the
    # next navigation: a phone's next page, here the next reload.
    replaced = ("async (old) => { const names = await caches.keys();"
                " return !names.includes(old) && names.some(n => n.startsWith('fieldapp-shell-')); }")
    for _navigation in range(3):
        page.reload()
        if eventually(page, replaced, shell_before[0], seconds=10):
            break
    else:
        pytest.fail("the new service worker never replaced the old one's shell cache")
    expect(page.locator("[data-outbox-badge]")).to_contain_text("1 need attention", timeout=15_000)
    assert_stored_once(server, [ops["protective_alert"]])
    kept = page.evaluate(OPS)
    assert [op["uuid"] for op in kept] == [ops["notify_parents"]["uuid"]]
    assert kept[0]["fields"] == ops["notify_parents"]["fields"]
    assert kept[0]["state"] == "quarantined"
    # The new worker answers from its own shell cache and the user's pages.
    phone.set_offline(True)
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_contain_text(":")
    assert page.evaluate("typeof htmx") == "object"
    phone.set_offline(False)


def test_pages_expire_without_a_check_in_but_the_outbox_stays(phone, server):
    page = phone.new_page()
    log_in(page, server)
    wait_until_offline_ready(page)
    open_episode(page, server)
    phone.set_offline(True)
    record_step_offline(page, "protective_alert", {"ev_reference": "PSA-EXPIRY-5"})
    # The last check-in was 13 hours ago (the window is 12 h).
    page.evaluate("""async () => {
        const userId = document.querySelector('meta[name=fieldapp-user]').content;
        await FieldappStore.setMeta('checkin:' + userId, Date.now() - 13 * 3600 * 1000); }""")
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are offline")
    names = page.evaluate("caches.keys()")
    assert not [n for n in names if n.startswith("fieldapp-pages-")], names
    held = page.evaluate(PHONE_CONTENTS)
    assert [op["fields"]["evidence"]["reference"] for op in held["stores"]["ops"]] == ["PSA-EXPIRY-5"]
    phone.set_offline(False)


def test_send_lost_on_the_way_back_is_queued_and_stored_once(phone, server):
    """The server stores the step, but its answer never reaches the phone (the connection drops):
    the phone keeps the op under the form's own client_uuid, and the replay is a duplicate."""
    page = phone.new_page()
    log_in(page, server)
    wait_until_offline_ready(page)
    open_episode(page, server)
    page.locator("li[data-step-key='protective_alert'] a").click()
    wizard = page.locator("#wizard")
    wizard.locator("[name='ev_reference']").fill("PSA-LOST-ANSWER-9")

    def store_then_drop(route):
        route.fetch()  # the server really receives and stores it
        route.abort("connectionreset")
    page.route(re.compile(r"/steps/protective_alert$"), store_then_drop)
    wizard.get_by_role("button", name=RECORD).click()
    expect(wizard.get_by_text(SAVED)).to_be_visible()
    page.unroute(re.compile(r"/steps/protective_alert$"))
    ops = page.evaluate(OPS)
    assert len(ops) == 1
    assert len(server.query("SELECT 1 FROM step_entries WHERE client_uuid = ?", ops[0]["uuid"])) == 1

    page.evaluate("window.FieldappOffline.syncNow()")
    expect(badge_count(page)).to_have_text("0", timeout=15_000)
    assert_stored_once(server, ops)
