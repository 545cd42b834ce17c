"""Supervisor review of a missing episode's initial response, on phones (DESIGN §7).

Three people share one story, each on their own phone: the caseworker reports a child missing and
records the police report, a supervisor records the NCMEC report, the caseworker sends the stage
for review, that supervisor (who recorded a step, so may not approve) sends it back with a comment
on a step, the caseworker corrects the entry and resubmits, and a second supervisor signs it off.
At the end the database is read: the signature, the review's history, the correction, and the
trigger that freezes an approved stage's entries against anyone with a database connection.
"""
from __future__ import annotations

import json
import re
import sqlite3
import tomllib
from contextlib import closing
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from .conftest import log_in

pytestmark = pytest.mark.browser

RECORD = "Record and go to the next step"
POLICY_FILE = Path(__file__).resolve().parents[2] / "fieldapp" / "policies" / "missouri-2023.toml"
POLICY = tomllib.loads(POLICY_FILE.read_text())
STEPS = {step["key"]: step for step in POLICY["steps"]}
# The initial-response stage covers the missing checklist's steps raised at T0 and by the police
# report, but not the contact log (never frozen) nor steps raised by an information event.
INITIAL_RESPONSE = [s["key"] for s in POLICY["steps"] if s["checklist"] == "missing"
                    and not s["anchor"].startswith("event:") and not s.get("contact_log")]
RECORDED = ("report_law_enforcement", "report_ncmec")
STILL_OPEN = [key for key in INITIAL_RESPONSE if key not in RECORDED]

LE_EVIDENCE = {"agency": "Springfield Police Department (fictional)", "phone": "(417) 555-0188",
               "report_number": "SPD-24-207", "officer": "Officer Brandt (fictional)",
               "reported_by": "Caseworker"}
CORRECTED_OFFICER = "Sergeant Brandt-Ellis (fictional)"
NCMEC_EVIDENCE = {"case_number": "NCMEC-1559876", "method": "Online",
                  "reported_by": "Caseworker"}
SEND_BACK_COMMENT = "The officer's name does not match the SPD report; please check it."
SHA256 = re.compile(r"^[0-9a-f]{64}$")


# --- helpers -------------------------------------------------------------------------------

def query(live_server, sql: str, *params) -> list[sqlite3.Row]:
    with closing(sqlite3.connect(f"file:{live_server.database_path}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, params).fetchall()


def user_id(live_server, username: str) -> int:
    return query(live_server, "SELECT id FROM users WHERE username = ?", username)[0]["id"]


def fill_step(page: Page, key: str, values: dict[str, str]) -> None:
    """Fill a step's evidence fields (named ev_<field>) in the wizard, outcome "Done"."""
    wizard = page.locator("#wizard")
    expect(wizard.get_by_role("heading", level=1)).to_have_text(STEPS[key]["title"])
    expect(wizard.get_by_role("radio", name="Done", exact=True)).to_be_checked()
    fields = {f["name"]: f for f in STEPS[key]["evidence"]}
    for name, value in values.items():
        if fields[name]["type"] == "choice":
            wizard.locator(f"select[name='ev_{name}']").select_option(value)
        else:
            wizard.locator(f"[name='ev_{name}']").fill(value)


def record_step(page: Page, key: str) -> None:
    """Press the wizard's button; htmx swaps the next open step in, or says what was wrong."""
    with page.expect_response(lambda r: r.request.method == "POST"
                              and r.url.endswith(f"/steps/{key}")) as posted:
        page.locator("#wizard").get_by_role("button", name=RECORD).click()
    response = posted.value
    assert response.status == 200, f"{key}: {response.status} {response.text()[:2000]}"
    expect(page).not_to_have_url(re.compile(rf"/steps/{key}(\?.*)?$"))


def stage_region(page: Page) -> Locator:
    """The initial-response stage's card on an episode's Review page."""
    return page.get_by_role("region", name=re.compile(r"^Initial response: "))


def open_review(page: Page) -> Locator:
    """From any page with the episode header, follow its "Review" link."""
    page.locator(".crumbs").get_by_role("link", name="Review", exact=True).click()
    expect(page).to_have_url(re.compile(r"/episodes/\d+/review$"))
    expect(page.get_by_role("heading", level=1, name=re.compile(r"^Review: "))).to_be_visible()
    return stage_region(page)


def submit_with_reasons(page: Page, stage: Locator, why: str) -> None:
    """Give a reason for every step of the stage still open, then submit it."""
    reasons = stage.locator("textarea[name^='reason_']")
    expect(reasons).to_have_count(len(STILL_OPEN))
    names = [reasons.nth(i).get_attribute("name") for i in range(len(STILL_OPEN))]
    assert sorted(names) == sorted(f"reason_{key}" for key in STILL_OPEN)
    for name in names:
        stage.locator(f"textarea[name='{name}']").fill(f"{why} ({name.removeprefix('reason_')})")
    stage.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_text("Sent for review.")).to_be_visible()
    expect(stage_region(page).get_by_role("heading", level=2)).to_have_text(
        "Initial response: submitted")


def open_from_queue(page: Page, child_name: str) -> Locator:
    """Follow the Reviews nav link and open this child's initial response from the queue."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reviews").click()
    expect(page.get_by_role("heading", level=1, name="Review queue")).to_be_visible()
    entry = page.get_by_role("link", name=f"{child_name}: Initial response", exact=True)
    expect(entry).to_have_count(1)
    entry.click()
    expect(page.get_by_role("heading", level=1, name=f"Review: {child_name}")).to_be_visible()
    stage = stage_region(page)
    expect(stage.get_by_role("heading", level=2)).to_have_text("Initial response: submitted")
    return stage


# --- the story -----------------------------------------------------------------------------

def test_initial_response_is_sent_back_corrected_and_signed(page: Page, new_phone, live_server,
                                                             check_page):
    caseworker = page
    # 1. The caseworker reports a child missing and records the police report.
    log_in(caseworker, live_server, "caseworker")
    caseworker.get_by_role("navigation", name="Main").get_by_role("link", name="Caseload").click()
    expect(caseworker.get_by_role("heading", level=1, name="My caseload")).to_be_visible()
    in_placement = caseworker.locator(".child-row").filter(
        has=caseworker.locator(".badge", has_text=re.compile(r"^\s*In placement\s*$")))
    expect(in_placement.nth(2)).to_be_visible()
    # The next to last: the checklist test reports the last one missing, so each story keeps
    # its own child whichever runs first.
    child = in_placement.nth(-2)
    name = child.locator(".child-link .name").inner_text()
    child.locator(".child-link").click()
    expect(caseworker.get_by_role("heading", level=1, name=name, exact=True)).to_be_visible()
    caseworker.get_by_role("link", name="Report missing").click()
    expect(caseworker.get_by_role("heading", level=1, name=re.compile(r" is missing$"))
           ).to_be_visible()
    caseworker.get_by_label("Discovered by", exact=True).select_option(label="Placement provider")
    caseworker.get_by_label("Name of the person who discovered it").fill(
        "House parent on duty (fictional)")
    caseworker.get_by_label("How the child went missing").select_option(label="Ran away")
    caseworker.get_by_label("Note", exact=True).fill("Not in the bedroom at the 10 pm check.")
    caseworker.get_by_role("button", name="Open the missing checklist").click()
    expect(caseworker).to_have_url(re.compile(r"/episodes/\d+/steps/report_law_enforcement$"))
    episode_id = int(re.search(r"/episodes/(\d+)/", caseworker.url).group(1))
    fill_step(caseworker, "report_law_enforcement", LE_EVIDENCE)
    record_step(caseworker, "report_law_enforcement")

    # 2. A supervisor of the team records the NCMEC report on the same episode.
    supervisor = new_phone()
    log_in(supervisor, live_server, "supervisor")
    supervisor.goto(f"/episodes/{episode_id}/steps/report_ncmec")
    fill_step(supervisor, "report_ncmec", NCMEC_EVIDENCE)
    record_step(supervisor, "report_ncmec")

    # 3. The caseworker sends the stage for review, saying why each other step is still open.
    stage = open_review(caseworker)
    expect(stage.get_by_role("heading", level=2)).to_have_text("Initial response: in progress")
    check_page(caseworker)
    submit_with_reasons(caseworker, stage, "Not done yet")

    # 4. The supervisor finds it in the queue, may not approve it, and sends it back.
    stage = open_from_queue(supervisor, name)
    check_page(supervisor)
    expect(stage.get_by_text("You recorded steps in this stage, so you cannot approve it")
           ).to_be_visible()
    expect(stage.get_by_role("button", name="Approve and sign")).to_have_count(0)
    on_a_step = stage.locator("details", has_text="Comment on a step")
    on_a_step.locator("summary").click()
    on_a_step.locator("textarea[name='comment_report_law_enforcement']").fill(SEND_BACK_COMMENT)
    check_page(supervisor)  # the opened details, with its labelled textareas
    stage.get_by_role("button", name="Send back with comments").click()
    expect(supervisor.get_by_text("Sent back with your comments.")).to_be_visible()
    expect(stage_region(supervisor).get_by_role("heading", level=2)).to_have_text(
        "Initial response: returned")

    # 5. The caseworker sees the comment on the step, corrects the entry and resubmits.
    caseworker.reload()
    stage = stage_region(caseworker)
    expect(stage.get_by_role("heading", level=2)).to_have_text("Initial response: returned")
    expect(stage).to_contain_text(SEND_BACK_COMMENT)
    check_page(caseworker)
    stage.get_by_role("link", name=STEPS["report_law_enforcement"]["title"], exact=True).click()
    wizard = caseworker.locator("#wizard")
    expect(wizard.get_by_role("heading", level=1)).to_have_text(
        STEPS["report_law_enforcement"]["title"])
    comment = wizard.locator(".review-comment")
    expect(comment).to_have_count(1)
    expect(comment).to_contain_text("Sent back by Sam Rivera")
    expect(comment).to_contain_text(SEND_BACK_COMMENT)
    check_page(caseworker)
    wizard.get_by_role("link", name="Correct this entry").click()
    expect(caseworker).to_have_url(re.compile(r"/steps/report_law_enforcement\?correct=\d+$"))
    expect(caseworker.get_by_text("You are correcting an earlier entry.")).to_be_visible()
    fill_step(caseworker, "report_law_enforcement", {**LE_EVIDENCE, "officer": CORRECTED_OFFICER})
    record_step(caseworker, "report_law_enforcement")
    stage = open_review(caseworker)
    expect(stage.get_by_role("heading", level=2)).to_have_text("Initial response: returned")
    submit_with_reasons(caseworker, stage, "Still not done")

    # 6. A second supervisor, who recorded nothing in the stage, signs it off.
    supervisor2 = new_phone()
    log_in(supervisor2, live_server, "supervisor2")
    supervisor2.get_by_role("navigation", name="Main").get_by_role("link", name="Reviews").click()
    expect(supervisor2.get_by_role("heading", level=1, name="Review queue")).to_be_visible()
    check_page(supervisor2)
    stage = open_from_queue(supervisor2, name)
    expect(stage.get_by_text("You recorded steps in this stage")).to_have_count(0)
    check_page(supervisor2)
    stage.get_by_label("Re-enter your password to sign").fill(live_server.passwords["supervisor2"])
    stage.get_by_role("button", name="Approve and sign").click()
    expect(supervisor2.get_by_text("Approved and signed.")).to_be_visible()
    stage = stage_region(supervisor2)
    expect(stage.get_by_role("heading", level=2)).to_have_text("Initial response: approved")
    signature = stage.locator(".signature")
    expect(signature).to_contain_text("Approved by Pat Okafor")
    expect(signature.locator(".meta")).to_have_text(re.compile(r"^SHA-256 [0-9a-f]{64}$"))
    shown_hash = signature.locator(".meta").inner_text().removeprefix("SHA-256 ")
    check_page(supervisor2)
    # Signed, it has left the queue.
    supervisor2.get_by_role("navigation", name="Main").get_by_role("link", name="Reviews").click()
    expect(supervisor2.get_by_role("heading", level=1, name="Review queue")).to_be_visible()
    expect(supervisor2.get_by_role("link", name=f"{name}: Initial response")).to_have_count(0)

    # 7. What the database holds.
    ids = {u: user_id(live_server, u) for u in ("caseworker", "supervisor", "supervisor2")}
    stages = query(live_server, "SELECT * FROM review_stages WHERE episode_id = ? AND stage = ?"
                   " AND addendum_of_id IS NULL", episode_id, "initial_response")
    assert len(stages) == 1
    row = stages[0]
    assert row["state"] == "approved"
    assert row["approved_by_id"] == ids["supervisor2"]
    assert row["approved_name"] == "Pat Okafor" and row["approved_role"] == "supervisor"
    assert row["content_sha256"] and SHA256.match(row["content_sha256"])
    assert row["content_sha256"] == shown_hash
    assert sorted(json.loads(row["open_step_reasons"])) == sorted(STILL_OPEN)

    events = query(live_server, "SELECT * FROM review_events WHERE review_stage_id = ?"
                   " ORDER BY at, id", row["id"])
    assert [e["action"] for e in events] == ["submit", "return", "submit", "approve"]
    assert [e["actor_id"] for e in events] == [ids["caseworker"], ids["supervisor"],
                                              ids["caseworker"], ids["supervisor2"]]
    assert json.loads(events[1]["step_comments"]) == {"report_law_enforcement": SEND_BACK_COMMENT}

    entries = query(live_server, """
        SELECT step_entries.*, episode_steps.step_key FROM step_entries
        JOIN episode_steps ON episode_steps.id = step_entries.episode_step_id
        WHERE episode_steps.episode_id = ? ORDER BY step_entries.id""", episode_id)
    assert [e["step_key"] for e in entries] == ["report_law_enforcement", "report_ncmec",
                                                "report_law_enforcement"]
    original, ncmec, corrected = entries
    assert all(e["review_stage_id"] == row["id"] for e in entries)
    assert original["supersedes_id"] is None and corrected["supersedes_id"] == original["id"]
    assert json.loads(original["evidence"])["officer"] == LE_EVIDENCE["officer"]
    assert json.loads(corrected["evidence"])["officer"] == CORRECTED_OFFICER
    assert [e["recorded_by_id"] for e in entries] == [ids["caseworker"], ids["supervisor"],
                                                      ids["caseworker"]]

    # The trigger refuses a change to an approved stage's entry, whoever holds a connection.
    with closing(sqlite3.connect(live_server.database_path, timeout=10)) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="approved review stage"):
            conn.execute("UPDATE step_entries SET reason = 'x' WHERE id = ?", (ncmec["id"],))
        conn.rollback()
    assert query(live_server, "SELECT reason FROM step_entries WHERE id = ?",
                 ncmec["id"])[0]["reason"] == ncmec["reason"]
