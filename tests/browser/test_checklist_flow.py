"""A caseworker on a phone works a whole missing episode, from "Report missing" to "back in care".

Every step goes through the wizard as a caseworker would: one step per screen, swapped in place
by htmx, with the address bar following. At the end the database itself is read, to prove each
tap left exactly one record with its four clocks (DESIGN §3): when it was done, the phone's clock
at the tap (stamped by the page's script), the server's clock, and the step's deadline.
"""
from __future__ import annotations

import re
import sqlite3
import tomllib
from collections import Counter
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Locator, Page, expect

from .conftest import log_in

pytestmark = pytest.mark.browser

PHONE_WIDTH = 390
MIN_TAP_HEIGHT = 44
# The page's script and the server read the same machine's clock, so only the trip between them
# separates recorded_at from received_at.
MAX_CLOCK_GAP = timedelta(seconds=5)
RECORD = "Record and go to the next step"
POLICY_FILE = Path(__file__).resolve().parents[2] / "fieldapp" / "policies" / "missouri-2023.toml"
POLICY = tomllib.loads(POLICY_FILE.read_text())
STEPS = {step["key"]: step for step in POLICY["steps"]}
# The steps raised at T0 (missing) and at T1 (return). Steps raised by an information event
# (trafficking identified, released while missing) do not arise in this story.
MISSING = [s["key"] for s in POLICY["steps"]
           if s["checklist"] == "missing" and not s["anchor"].startswith("event:")]
RETURN = [s["key"] for s in POLICY["steps"] if s["checklist"] == "return"]
CONTACT_LOG_STEPS = {key for key, s in STEPS.items() if s.get("contact_log")}


def evidence_for(today: date) -> dict[str, dict[str, str | list[str]]]:
    """What the caseworker types into each step's evidence fields (named ev_<field> on the page)."""
    day = today.isoformat()
    notify = {"method": "Phone"}
    return {
        "report_law_enforcement": {"agency": "Springfield Police Department (fictional)",
                                   "phone": "(417) 555-0142", "report_number": "SPD-24-118",
                                   "officer": "Officer Reyes (fictional)",
                                   "reported_by": "Caseworker"},
        "report_ncmec": {"case_number": "NCMEC-1554321", "method": "Phone",
                         "reported_by": "Caseworker"},
        "report_contents": {"photo_date": day,
                            "what_sent": "Photo, description and endangerment form to SPD and NCMEC"},
        "inform_and_obtain": {"who": "School counselor; placement provider",
                              "learned": "Seen at the bus stop with two older youths"},
        "notify_juvenile_officer": {**notify, "name": "J. Ortiz (fictional)", "result": "Told"},
        "notify_court_representative": {**notify, "name": "GAL P. Shah (fictional)",
                                        "result": "Voicemail left, then reached"},
        "notify_parents": {**notify, "name": "Mother, D. Lane (fictional)", "result": "Told"},
        "protective_alert": {"reference": "PSA-2024-0077"},
        "update_living_arrangement": {"entered_on": day},
        "notify_located": {"who": "SPD records desk and NCMEC case manager"},
        "safety_assessment": {"findings": "No injuries; safe to return to the placement"},
        "medical_exam": {"provider": "Mercy Clinic (fictional)", "exam_date": day},
        "interview_factors": {"categories": ["reach_people", "escape"],
                              "notes": "Wanted to see a friend; upset by house rules"},
        "interview_experiences": {"categories": ["unsafe_living"],
                                  "notes": "Slept at a friend's flat"},
        "family_support_team": {"meeting_date": day, "attendees": "Youth, provider, GAL, caseworker",
                                "plan_changes": "Weekly call with the friend's family arranged"},
        "placement_visit": {"visit_date": day},
        "cac_referral": {"referral_date": day, "center": "Child Advocacy Center (fictional)"},
        "supportive_services": {"service": "Counseling or therapy", "start_date": day},
        "notify_return": {"who": "Juvenile officer, GAL and mother", "method": "Phone"},
        "update_living_arrangement_return": {"entered_on": day},
    }


# --- helpers -------------------------------------------------------------------------------

def assert_no_sideways_scroll(page: Page) -> None:
    widths = page.evaluate("""() => ({scrollWidth: document.documentElement.scrollWidth,
                                      innerWidth: window.innerWidth})""")
    # A phone zooms a too-wide page out, so innerWidth must also still be the phone's own.
    assert widths["scrollWidth"] <= widths["innerWidth"] == PHONE_WIDTH, (
        f"{page.url} scrolls sideways on a {PHONE_WIDTH} px phone: {widths}")


def minute_input(instant: datetime, zone: ZoneInfo) -> str:
    """The value of a datetime-local input for ``instant``, in the agency's zone."""
    return instant.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def from_input(value: str, zone: ZoneInfo) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=zone).astimezone(UTC)


def utc(text: str | None) -> datetime | None:
    """A time as fieldapp stores it in SQLite: naive UTC text."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if text else None


def query(live_server, sql: str, *params) -> list[sqlite3.Row]:
    with closing(sqlite3.connect(f"file:{live_server.database_path}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, params).fetchall()


def count(live_server, table: str) -> int:
    return query(live_server, f"SELECT count(*) AS n FROM {table}")[0]["n"]


def wizard_at(page: Page, key: str, number: int, of: int) -> Locator:
    """The wizard, once it shows ``key`` as step ``number`` of ``of``."""
    wizard = page.locator("#wizard")
    expect(page).to_have_url(re.compile(rf"/episodes/\d+/steps/{key}$"))
    expect(wizard.get_by_role("heading", level=1)).to_have_text(STEPS[key]["title"])
    expect(wizard.locator(".step-count")).to_have_text(re.compile(rf"· Step {number} of {of}$"))
    return wizard


def fill_evidence(wizard: Locator, key: str, values: dict) -> None:
    fields = {f["name"]: f for f in STEPS[key]["evidence"]}
    missing = {n for n, f in fields.items() if f["required"]} - set(values)
    assert not missing, f"the test gives no value for {key}'s required {missing}"
    expect(wizard.get_by_role("radio", name="Done", exact=True)).to_be_checked()
    for name, value in values.items():
        field = fields[name]
        if field["type"] == "categories":
            labels = {c["key"]: c["label"] for c in POLICY["categories"][field["options_from"]]}
            for choice in value:
                wizard.get_by_role("checkbox", name=labels[choice], exact=True).check()
        elif field["type"] == "choice":
            wizard.locator(f"select[name='ev_{name}']").select_option(value)
        else:
            wizard.locator(f"[name='ev_{name}']").fill(value)


def answer_screen_no(wizard: Locator) -> None:
    """The trafficking screen: no disclosure, and "No" to every question of the instrument."""
    disclosed = wizard.get_by_role("group", name="Did the child disclose trafficking?")
    expect(disclosed.get_by_role("radio", name="No: complete the questions")).to_be_checked()
    questions = POLICY["screening"]["questions"]
    expect(wizard.locator("input[type=radio][name^='q_']")).to_have_count(3 * len(questions))
    for question in questions:
        wizard.get_by_role("group", name=question["text"]).get_by_role(
            "radio", name="No", exact=True).check()


def record_and_swap(page: Page, live_server, key: str, next_key: str) -> None:
    """Press the wizard's button and prove the next step was swapped into this same document."""
    marker = f"before {key}"
    page.evaluate("(marker) => { window.__wizardMarker = marker; }", marker)
    with page.expect_response(lambda r: r.request.method == "POST"
                              and r.url.endswith(f"/steps/{key}")) as posted:
        page.locator("#wizard").get_by_role("button", name=RECORD).click()
    response = posted.value
    assert response.status == 200, f"{key}: {response.status} {response.text()[:2000]}"
    assert response.request.headers.get("hx-request") == "true", f"{key} was not posted by htmx"
    next_path = re.sub(r"/steps/[^/]+$", f"/steps/{next_key}",
                       response.url.removeprefix(live_server.url))
    assert response.headers.get("hx-push-url") == next_path
    expect(page).to_have_url(live_server.url + next_path)
    expect(page.locator("#wizard").get_by_role("heading", level=1)).to_have_text(
        STEPS[next_key]["title"])
    assert page.evaluate("window.__wizardMarker") == marker, (
        f"recording {key} reloaded the page instead of swapping the next step in")
    expect(page.locator("#wizard")).to_have_count(1)


def log_contact(page: Page, purpose: str, person: str, relationship: str, learned: str) -> None:
    """From a contact-log step, follow "Log a contact" and log one through the contact form."""
    page.locator("#wizard").get_by_role("link", name="Log a contact").click()
    expect(page.get_by_role("heading", level=1, name="Contact log")).to_be_visible()
    expect(page.get_by_label("What for", exact=True)).to_have_value(purpose)
    logged_before = int(re.search(r"\((\d+)\)", page.get_by_role(
        "heading", level=2, name=re.compile(r"^Logged")).inner_text()).group(1))
    page.get_by_label("Person or office", exact=True).fill(person)
    page.get_by_label("Relationship", exact=True).select_option(relationship)
    page.get_by_label("How", exact=True).select_option("phone")
    expect(page.get_by_label("When", exact=True)).not_to_have_value("")
    page.get_by_role("radio", name="Reached them").check()
    page.get_by_label("What was learned", exact=True).fill(learned)
    page.get_by_role("button", name="Log the contact").click()
    expect(page.get_by_text("Contact logged.")).to_be_visible()
    expect(page.get_by_role("heading", level=2, name=f"Logged ({logged_before + 1})")).to_be_visible()
    expect(page.locator("ol.history li", has_text=person)).to_have_count(1)


def open_step_from_overview(page: Page, key: str) -> None:
    page.get_by_role("link", name="Episode overview").click()
    expect(page).to_have_url(re.compile(r"/episodes/\d+$"))
    page.get_by_role("link", name=re.compile(rf"^\d+\. {re.escape(STEPS[key]['title'])}$")).click()


# --- the story -----------------------------------------------------------------------------

def test_caseworker_works_a_missing_episode_to_the_return(page: Page, live_server, check_page):
    entries_before = count(live_server, "step_entries")
    contacts_before = count(live_server, "search_contacts")

    # My work is the caseworker's home.
    log_in(page, live_server, "caseworker")
    expect(page.get_by_role("heading", level=1, name="My work")).to_be_visible()
    check_page(page)

    # 1. A child in placement goes missing.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Caseload").click()
    expect(page.get_by_role("heading", level=1, name="My caseload")).to_be_visible()
    in_placement = page.locator(".child-row").filter(
        has=page.locator(".badge", has_text=re.compile(r"^\s*In placement\s*$")))
    expect(in_placement.first).to_be_visible()
    # The last one, so the caseload test's first child is left as the demo made it.
    name = in_placement.last.locator(".child-link .name").inner_text()
    in_placement.last.locator(".child-link").click()
    expect(page.get_by_role("heading", level=1, name=name, exact=True)).to_be_visible()
    expect(page.locator(".lead .badge")).to_have_text("In placement")
    page.get_by_role("link", name="Report missing").click()

    expect(page.get_by_role("heading", level=1, name=re.compile(r" is missing$"))).to_be_visible()
    discovered = page.get_by_label("When the absence was discovered (T0)")
    zone = ZoneInfo(page.locator("#discovered_at-hint").inner_text().split(" time.")[0])
    t0_text = minute_input(datetime.now(UTC) - timedelta(minutes=40), zone)
    discovered.fill(t0_text)
    page.get_by_label("Discovered by", exact=True).select_option(label="Placement provider")
    page.get_by_label("Name of the person who discovered it").fill("Night house parent (fictional)")
    page.get_by_label("How the child went missing").select_option(label="Ran away")
    page.get_by_label("Where last seen, wearing what, with whom").fill(
        "Placement kitchen after dinner, grey hoodie")
    page.get_by_label("Note", exact=True).fill("Not in the bedroom at the 10 pm check.")
    check_page(page)
    page.get_by_role("button", name="Open the missing checklist").click()

    # 2. The missing checklist, one step per screen.
    wizard = wizard_at(page, MISSING[0], 1, len(MISSING))
    episode_id = int(re.search(r"/episodes/(\d+)/", page.url).group(1))
    assert_no_sideways_scroll(page)
    button = wizard.get_by_role("button", name=RECORD)
    height = button.bounding_box()["height"]
    assert height >= MIN_TAP_HEIGHT, f"the wizard's button is {height} px tall"
    check_page(page)

    today = datetime.now(zone).date()
    evidence = evidence_for(today)
    recorded = []
    for number, key in enumerate(MISSING, start=1):
        if key in CONTACT_LOG_STEPS:
            continue  # below: these are evidenced by the contact log, not by a form
        wizard = wizard_at(page, key, number, len(MISSING))
        fill_evidence(wizard, key, evidence[key])
        record_and_swap(page, live_server, key, MISSING[number])
        recorded.append(key)
        if key == "report_ncmec":
            assert_no_sideways_scroll(page)  # a swapped-in step fits the phone too

    # The wizard has reached the contact log steps: search first, then the LE/NCMEC follow-up.
    assert MISSING[-2:] == ["search_contacts", "follow_up_le_ncmec"]
    wizard = wizard_at(page, "search_contacts", len(MISSING) - 1, len(MISSING))
    log_contact(page, "search", "Aunt Rosa (fictional)", "relative",
                "Has not seen the child; will call if the child turns up")
    check_page(page)
    open_step_from_overview(page, "follow_up_le_ncmec")
    wizard_at(page, "follow_up_le_ncmec", len(MISSING), len(MISSING))
    log_contact(page, "follow_up", "SPD records desk (fictional)", "law_enforcement",
                "NCIC entry confirmed active")

    # 3. Found, back in care, and the return checklist.
    page.get_by_role("link", name="Episode overview").click()
    expect(page.get_by_role("heading", level=1, name=f"{name}: missing")).to_be_visible()
    missing_rows = page.get_by_role("region", name="Missing checklist").locator(".step-row")
    expect(missing_rows).to_have_count(len(MISSING))
    expect(missing_rows.locator(".badge.state-done")).to_have_count(len(MISSING))
    check_page(page)

    page.get_by_role("link", name="Child found").click()
    expect(page.get_by_role("heading", level=1, name="Child found")).to_be_visible()
    located_text = page.get_by_label("When the child's whereabouts became known (T1)").input_value()
    page.get_by_label("Found", exact=True).select_option(label="In state")
    page.get_by_label("Where", exact=True).fill("A friend's apartment (fictional)")
    page.get_by_label("Located by (name and role)").fill("Officer Reyes, SPD (fictional)")
    expect(page.get_by_role("radio", name="Located, not yet back in an approved placement")
           ).to_be_checked()
    page.get_by_label("Note", exact=True).fill("Picked up by police.")
    check_page(page)
    page.get_by_role("button", name="Record where the child was found").click()
    wizard_at(page, RETURN[0], 1, len(RETURN))

    page.get_by_role("link", name="Episode overview").click()
    expect(page.get_by_role("heading", level=1, name=f"{name}: found")).to_be_visible()
    page.get_by_role("link", name="Back in care").click()
    expect(page.get_by_role("heading", level=1, name="Back in care")).to_be_visible()
    returned_text = page.get_by_label("When the child was back in an approved placement (T2)"
                                      ).input_value()
    page.get_by_label("Placement setting").select_option(label="Foster family home (non-relative)")
    page.get_by_label("Placement (provider or home)").fill("The Lanes' foster home (fictional)")
    page.get_by_label("Note", exact=True).fill("Back with the same foster family.")
    check_page(page)
    page.get_by_role("button", name="Record the return").click()

    for number, key in enumerate(RETURN, start=1):
        wizard = wizard_at(page, key, number, len(RETURN))
        if key == "trafficking_screening":
            answer_screen_no(wizard)
            check_page(page)
        else:
            fill_evidence(wizard, key, evidence[key])
        if number < len(RETURN):
            record_and_swap(page, live_server, key, RETURN[number])
        else:
            # Nothing is left open, so the wizard hands over to the overview with a real navigation.
            wizard.get_by_role("button", name=RECORD).click()
        recorded.append(key)

    expect(page).to_have_url(f"{live_server.url}/episodes/{episode_id}")
    expect(page.get_by_text("Every step is recorded.")).to_be_visible()
    expect(page.get_by_role("heading", level=1, name=f"{name}: back in care")).to_be_visible()
    rows = page.locator(".step-row")
    expect(rows).to_have_count(len(MISSING) + len(RETURN))
    expect(rows.locator(".badge.state-done")).to_have_count(len(MISSING) + len(RETURN))

    page.get_by_role("link", name="Contact log").first.click()
    expect(page.get_by_role("heading", level=2, name="Logged (2)")).to_be_visible()
    check_page(page)

    # 4. What the database holds.
    t0 = from_input(t0_text, zone)
    episode = query(live_server, "SELECT * FROM episodes WHERE id = ?", episode_id)[0]
    assert utc(episode["discovered_at"]) == t0
    assert utc(episode["located_at"]) == from_input(located_text, zone)
    assert utc(episode["returned_at"]) == from_input(returned_text, zone)
    assert t0 < utc(episode["located_at"]) <= utc(episode["returned_at"])
    assert episode["end_reason"] == "returned_to_care"
    assert (episode["discovered_by_role"], episode["how_missing"]) == ("placement_provider", "ran_away")

    steps = {row["step_key"]: row for row in query(
        live_server, "SELECT * FROM episode_steps WHERE episode_id = ?", episode_id)}
    assert set(steps) == set(MISSING) | set(RETURN)
    assert all(row["due_at"] for row in steps.values()), "a step has no deadline"
    for report in ("report_law_enforcement", "report_ncmec"):
        assert utc(steps[report]["due_at"]) == t0 + timedelta(hours=2), report

    entries = query(live_server, """
        SELECT step_entries.*, episode_steps.step_key, episode_steps.due_at
        FROM step_entries JOIN episode_steps ON episode_steps.id = step_entries.episode_step_id
        WHERE episode_steps.episode_id = ? ORDER BY step_entries.id""", episode_id)
    assert Counter(e["step_key"] for e in entries) == Counter(recorded)
    assert [e["step_key"] for e in entries] == recorded  # in the order they were tapped
    assert len(recorded) == len(MISSING) - len(CONTACT_LOG_STEPS) + len(RETURN)
    assert count(live_server, "step_entries") == entries_before + len(recorded)
    for e in entries:
        done_at, recorded_at, received_at = (utc(e["done_at"]), utc(e["recorded_at"]),
                                             utc(e["received_at"]))
        assert e["outcome"] == "done", e["step_key"]
        assert done_at and recorded_at and received_at and e["due_at"], dict(e)
        assert t0 <= done_at <= recorded_at, e["step_key"]
        # The script's stamp: JavaScript's clock has millisecond precision and is never the
        # server's own instant, which is what recorded_at falls back to without the script.
        assert recorded_at != received_at and recorded_at.microsecond % 1000 == 0, dict(e)
        assert abs(received_at - recorded_at) < MAX_CLOCK_GAP, dict(e)

    le = next(e for e in entries if e["step_key"] == "report_law_enforcement")
    assert '"report_number": "SPD-24-118"' in le["evidence"]
    assert utc(steps["inform_and_obtain"]["due_at"]) == utc(le["done_at"]) + timedelta(hours=24)
    screen = next(e for e in entries if e["step_key"] == "trafficking_screening")
    assert '"result": "negative"' in screen["evidence"]
    factors = next(e for e in entries if e["step_key"] == "interview_factors")
    assert '"categories": ["reach_people", "escape"]' in factors["evidence"]

    contacts = query(live_server, "SELECT * FROM search_contacts WHERE episode_id = ? ORDER BY id",
                     episode_id)
    assert [c["purpose"] for c in contacts] == ["search", "follow_up"]
    assert count(live_server, "search_contacts") == contacts_before + 2
    for c in contacts:
        recorded_at, received_at = utc(c["recorded_at"]), utc(c["received_at"])
        assert recorded_at != received_at and abs(received_at - recorded_at) < MAX_CLOCK_GAP

    uuids = [row["client_uuid"] for row in [*entries, *contacts]]
    assert all(uuids) and len(set(uuids)) == len(uuids), "a client_uuid repeats"
    placeholders = ",".join("?" * len(uuids))
    ops = query(live_server, f"SELECT uuid FROM client_ops WHERE uuid IN ({placeholders})", *uuids)
    assert len(ops) == len(uuids), "a write did not go through the exactly-once ledger"
