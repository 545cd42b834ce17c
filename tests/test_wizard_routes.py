"""The step-by-step wizard over HTTP: one step per screen with its deadline and countdown, the
next step after each record (a redirect without JavaScript, an in-place swap with htmx), the
overview, and who may open and record which steps (DESIGN §9)."""
from __future__ import annotations

import re
import uuid
from html import unescape

import pytest
from sqlalchemy import select

from fieldapp import db
from fieldapp.checklists import record_item
from fieldapp.contacts import log_contact
from fieldapp.episodes import mark_located, mark_returned
from fieldapp.models import AuditEvent, BreakGlassGrant, ClientOp, Episode, StepEntry

from helpers import count, field_error, fresh, utc

LE = "report_law_enforcement"
LE_EVIDENCE = {"ev_agency": "Springfield PD", "ev_phone": "(417) 555-0100",
               "ev_report_number": "26-004411", "ev_officer": "Sgt. Lee",
               "ev_reported_by": "Caseworker"}
NCMEC_EVIDENCE = {"ev_case_number": "1498765", "ev_method": "Online", "ev_reported_by": "Caseworker"}
MISSING_TITLES = [
    ("report_law_enforcement", "Report to law enforcement"),
    ("report_ncmec", "Report to NCMEC"),
    ("report_contents", "Send the photo, description and endangerment information"),
    ("inform_and_obtain", "Inform and gather information about the disappearance"),
    ("notify_juvenile_officer", "Tell the juvenile officer"),
    ("notify_court_representative", "Tell the court representative (GAL)"),
    ("notify_parents", "Tell the parents"),
    ("protective_alert", "Create a protective service alert"),
    ("update_living_arrangement", "Record the missing living arrangement in FACES"),
    ("search_contacts", "Search: contact everyone who may know"),
    ("follow_up_le_ncmec", "Keep in touch with law enforcement and NCMEC"),
]
# Evidence that completes each form-recorded missing step (the last two are fed by the contact log).
DONE_EVIDENCE = {
    "report_law_enforcement": {k.removeprefix("ev_"): v for k, v in LE_EVIDENCE.items()},
    "report_ncmec": {k.removeprefix("ev_"): v for k, v in NCMEC_EVIDENCE.items()},
    "report_contents": {"photo_date": "2026-02-14", "what_sent": "Photo and description"},
    "inform_and_obtain": {"who": "School counselor", "learned": "Talked of a boyfriend"},
    "notify_juvenile_officer": {"name": "JO Park", "method": "Phone", "result": "Told"},
    "notify_court_representative": {"name": "GAL Ruiz", "method": "Email", "result": "Told"},
    "notify_parents": {"name": "Mother", "method": "Phone", "result": "Told"},
    "protective_alert": {"reference": "PSA-77"},
    "update_living_arrangement": {"entered_on": "2026-03-02"},
}
DEVICE_CLOCK = "2026-03-02T19:58:00Z"


def step_form(outcome="done", done_at="2026-03-02T13:30", reason="", **fields) -> dict:
    return {"outcome": outcome, "done_at": done_at, "reason": reason,
            "recorded_at": DEVICE_CLOCK, "client_uuid": str(uuid.uuid4()), **fields}


def record(episode_id: int, user, step_key: str, done_at=None):
    with db.writing() as s:
        record_item(s, s.get(Episode, episode_id), step_key, s.merge(user), outcome="done",
                    done_at=done_at or utc(2026, 3, 2, 19, 30), recorded_at=None,
                    raw_evidence=DONE_EVIDENCE[step_key], reason="",
                    client_uuid=str(uuid.uuid4()))


def log(episode_id: int, user, purpose: str):
    with db.writing() as s:
        log_contact(s, s.get(Episode, episode_id), s.merge(user), person="Somebody",
                    relationship="law_enforcement" if purpose != "search" else "friend",
                    method="phone", contacted_at=utc(2026, 3, 2, 19, 30), reached="reached",
                    learned="", purpose=purpose, client_uuid=str(uuid.uuid4()))


def overview_rows(html: str) -> list[tuple[str, str, str, str]]:
    """(state, step key, "N. title", deadline text) for each step row of the overview."""
    rows = re.findall(r'<li class="step-row state-(\w+)"[^>]*>\s*<a href="/episodes/\d+/steps/(\w+)">'
                      r'(.*?)</a>.*?<div class="meta">(.*?)</div>\s*</li>', html, re.S)
    return [(state, key, unescape(title), " ".join(unescape(re.sub(r"<[^>]+>", " ", deadline)).split()))
            for state, key, title, deadline in rows]


@pytest.fixture
def episode(client, world, login, make_episode):
    """Alice reported missing at 13:00 CST (19:00 UTC), an hour ago; her caseworker is logged in."""
    login(world.cw_a)
    return make_episode(world.child_a, world.cw_a)


@pytest.fixture
def back_in_care(world, make_episode):
    """Alice's episode with her found and back in care, so the return steps have deadlines."""
    episode = make_episode(world.child_a, world.cw_a, t0=utc(2026, 3, 1, 14))
    with db.writing() as s:
        row, worker = s.get(Episode, episode.id), s.merge(world.cw_a)
        mark_located(s, row, worker, located_at=utc(2026, 3, 2, 14), located_where="in_state",
                     located_place="Friend's flat", located_by="Springfield PD",
                     status="located_pending_return", note="Found")
        mark_returned(s, row, worker, returned_at=utc(2026, 3, 2, 18),
                      setting="foster_family_nonrelative", provider_name="Maple House")
    return episode


# --- one step per screen ----------------------------------------------------------------------

def test_a_step_shows_its_place_title_deadline_and_countdown(client, episode):
    response = client.get(f"/episodes/{episode.id}/steps/{LE}")
    assert response.status_code == 200
    page = response.text
    assert "<html" in page
    assert "Missing checklist · Step 1 of 11" in page
    assert '<h1 id="step-title">Report to law enforcement</h1>' in page
    assert "Due Mon 2 Mar 2026, 15:00 CST" in page  # 21:00 UTC, in Chicago
    assert re.search(r'<strong class="countdown" data-due="2026-03-02T21:00:00\+00:00">due in 1 h</strong>',
                     page)
    assert "Ask them to enter the child in NCIC" in page  # the instructions
    for name in LE_EVIDENCE:
        assert f'name="{name}"' in page
    assert "HX-Request" in response.headers["Vary"]

    third = client.get(f"/episodes/{episode.id}/steps/report_contents").text
    assert "Step 3 of 11" in third
    assert "Send the photo, description and endangerment information" in third


@pytest.mark.parametrize("t0, countdown", [
    (utc(2026, 3, 2, 19, 20), "due in 1 h 20 min"),
    (utc(2026, 3, 2, 18, 15), "due in 15 min"),
    (utc(2026, 3, 2, 17, 0), "overdue by 1 h"),
    (utc(2026, 3, 2, 14, 50), "overdue by 3 h 10 min"),
    (utc(2026, 2, 27, 19, 0), "overdue by 2 d 23 h"),
])
def test_the_countdown_reads_naturally(client, world, login, make_episode, t0, countdown):
    login(world.cw_a)
    episode = make_episode(world.child_a, world.cw_a, t0=t0)
    page = client.get(f"/episodes/{episode.id}/steps/report_ncmec").text
    found = re.search(r'<strong class="countdown[^"]*"[^>]*>(.*?)</strong>', page).group(1)
    assert found == countdown


def test_htmx_asks_for_the_step_alone(htmx_client, world, login, make_episode):
    login(world.cw_a, target=htmx_client)
    episode = make_episode(world.child_a, world.cw_a)
    response = htmx_client.get(f"/episodes/{episode.id}/steps/report_ncmec")
    assert response.status_code == 200
    assert "<html" not in response.text
    assert response.text.count('<section id="wizard"') == 1
    assert "Step 2 of 11" in response.text
    assert "HX-Request" in response.headers["Vary"]


# --- recording and moving on ------------------------------------------------------------------

def test_a_recorded_step_redirects_to_the_next_open_step(client, episode):
    response = client.post(f"/episodes/{episode.id}/steps/{LE}", data=step_form(**LE_EVIDENCE))
    assert response.status_code == 303
    assert response.headers["Location"] == f"/episodes/{episode.id}/steps/report_ncmec"
    assert count(StepEntry) == 1

    # Recording a later step moves on from there; the step after it that is already done is skipped.
    client.post(f"/episodes/{episode.id}/steps/report_contents",
                data=step_form(ev_photo_date="2026-02-14", ev_what_sent="Photo"))
    response = client.post(f"/episodes/{episode.id}/steps/report_ncmec", data=step_form(**NCMEC_EVIDENCE))
    assert response.headers["Location"] == f"/episodes/{episode.id}/steps/inform_and_obtain"


def test_after_the_last_step_in_order_the_wizard_wraps_to_the_first_open_one(client, world, episode):
    log(episode.id, world.cw_a, "search")
    log(episode.id, world.cw_a, "follow_up")
    response = client.post(f"/episodes/{episode.id}/steps/update_living_arrangement",
                           data=step_form(ev_entered_on="2026-03-02"))
    assert response.status_code == 303
    assert response.headers["Location"] == f"/episodes/{episode.id}/steps/{LE}"


def test_when_every_step_is_recorded_the_wizard_goes_to_the_overview(client, world, episode):
    log(episode.id, world.cw_a, "search")
    log(episode.id, world.cw_a, "follow_up")
    for key in list(DONE_EVIDENCE)[:-1]:
        record(episode.id, world.cw_a, key)
    last = step_form(ev_entered_on="2026-03-02")
    response = client.post(f"/episodes/{episode.id}/steps/update_living_arrangement", data=last)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/episodes/{episode.id}"
    assert "Every step is recorded." in client.get(f"/episodes/{episode.id}").text


def test_with_htmx_a_recorded_step_swaps_in_the_next_one(htmx_client, world, login, make_episode):
    login(world.cw_a, target=htmx_client)
    episode = make_episode(world.child_a, world.cw_a)
    response = htmx_client.post(f"/episodes/{episode.id}/steps/{LE}", data=step_form(**LE_EVIDENCE))

    assert response.status_code == 200
    assert "<html" not in response.text
    assert response.text.count('<section id="wizard"') == 1
    assert "Step 2 of 11" in response.text
    assert '<h1 id="step-title">Report to NCMEC</h1>' in response.text
    assert response.headers["HX-Push-Url"] == f"/episodes/{episode.id}/steps/report_ncmec"
    assert "HX-Request" in response.headers["Vary"]
    [entry] = fresh().scalars(select(StepEntry)).all()
    assert entry.step.step_key == LE and entry.outcome == "done"


def test_with_htmx_the_last_step_leaves_the_wizard(htmx_client, world, login, make_episode):
    login(world.cw_a, target=htmx_client)
    episode = make_episode(world.child_a, world.cw_a)
    log(episode.id, world.cw_a, "search")
    log(episode.id, world.cw_a, "follow_up")
    for key in list(DONE_EVIDENCE)[:-1]:
        record(episode.id, world.cw_a, key)
    response = htmx_client.post(f"/episodes/{episode.id}/steps/update_living_arrangement",
                                data=step_form(ev_entered_on="2026-03-02"))
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == f"/episodes/{episode.id}"
    assert count(StepEntry) == len(DONE_EVIDENCE)


def test_with_htmx_a_refused_step_comes_back_with_messages_and_values(
        htmx_client, world, login, make_episode):
    login(world.cw_a, target=htmx_client)
    episode = make_episode(world.child_a, world.cw_a)
    posted = step_form(**{**LE_EVIDENCE, "ev_phone": "ring the desk", "ev_report_number": ""})
    response = htmx_client.post(f"/episodes/{episode.id}/steps/{LE}", data=posted)

    assert response.status_code == 422
    html = response.text
    assert "<html" not in html
    assert "Not saved yet. Correct the fields marked below." in html
    assert "Give a phone number" in field_error(html, "ev_phone")
    assert "Required: report number." in field_error(html, "ev_report_number")
    # Each message sits inside its own field, tied to the input for screen readers.
    phone_field = re.search(r'<div class="field has-error">\s*<label for="ev_phone">.*?</div>', html, re.S)
    assert 'id="ev_phone-error"' in phone_field.group(0)
    assert 'aria-describedby="ev_phone-error"' in phone_field.group(0)
    # Nothing typed is lost.
    assert 'value="ring the desk"' in html
    assert 'value="Springfield PD"' in html
    assert 'value="Sgt. Lee"' in html
    assert "<option selected>Caseworker</option>" in html
    assert 'value="2026-03-02T13:30"' in html
    assert re.search(r'value="done" checked', html)
    assert "HX-Request" in response.headers["Vary"]
    assert count(StepEntry) == 0 and count(ClientOp) == 0


def test_without_htmx_a_refused_step_is_the_full_page(client, episode):
    response = client.post(f"/episodes/{episode.id}/steps/{LE}",
                           data=step_form(**{**LE_EVIDENCE, "ev_officer": ""}))
    assert response.status_code == 422
    assert "<html" in response.text
    assert "Required: officer who took the report." in field_error(response.text, "ev_officer")


# --- deadlines' wording -----------------------------------------------------------------------

def test_an_agency_target_past_due_is_after_the_target_never_overdue(client, episode, clock):
    clock.set(utc(2026, 3, 3, 21, 30))  # 26 h 30 min after T0; the target was T0 + 24 h
    page = client.get(f"/episodes/{episode.id}/steps/notify_juvenile_officer").text
    assert "Agency target" in page
    assert "Target Tue 3 Mar 2026, 13:00 CST" in page
    assert re.search(r'<strong class="countdown"[^>]* data-target>after the target by 2 h 30 min</strong>',
                     page)
    assert "overdue" not in page.lower() and "missed" not in page.lower()

    # Done late, it stays "after the target"; a law deadline done late is "missed".
    client.post(f"/episodes/{episode.id}/steps/notify_juvenile_officer",
                data=step_form(done_at="2026-03-03T15:00", recorded_at="2026-03-03T21:29:00Z",
                               ev_name="JO Park", ev_method="Phone", ev_result="Told"))
    done = client.get(f"/episodes/{episode.id}/steps/notify_juvenile_officer").text
    assert "after the target by 2 h" in done
    assert "overdue" not in done.lower() and "missed" not in done.lower()

    rows = {key: (state, deadline) for state, key, _, deadline in
            overview_rows(client.get(f"/episodes/{episode.id}").text)}
    assert rows["notify_juvenile_officer"] == (
        "done", "Target Tue 3 Mar 2026, 13:00 CST: after the target by 2 h")
    assert rows["notify_parents"][1] == "Target Tue 3 Mar 2026, 13:00 CST: after the target by 2 h 30 min"
    assert rows["protective_alert"][1] == "Due Tue 3 Mar 2026, 13:00 CST: overdue by 2 h 30 min"


def test_a_law_deadline_done_late_is_missed(client, episode, clock):
    clock.set(utc(2026, 3, 2, 23, 0))
    client.post(f"/episodes/{episode.id}/steps/report_ncmec",
                data=step_form(done_at="2026-03-02T16:10", recorded_at="2026-03-02T22:59:00Z",
                               **NCMEC_EVIDENCE))
    page = client.get(f"/episodes/{episode.id}/steps/report_ncmec").text
    assert "missed by 1 h 10 min" in page


# --- the overview -----------------------------------------------------------------------------

def test_the_overview_lists_every_step_with_its_state_and_deadline(client, world, episode):
    record(episode.id, world.cw_a, LE, done_at=utc(2026, 3, 2, 19, 40))
    page = client.get(f"/episodes/{episode.id}").text
    rows = overview_rows(page)

    assert [(key, title) for _, key, title, _ in rows] == [
        (key, f"{n}. {title}") for n, (key, title) in enumerate(MISSING_TITLES, start=1)]
    by_key = {key: (state, deadline) for state, key, _, deadline in rows}
    assert by_key[LE] == ("done", "Due Mon 2 Mar 2026, 15:00 CST: met")
    assert by_key["report_ncmec"] == ("open", "Due Mon 2 Mar 2026, 15:00 CST: due in 1 h")
    assert by_key["inform_and_obtain"] == ("open", "Due Tue 3 Mar 2026, 13:40 CST: due in 23 h 40 min")
    assert by_key["notify_parents"] == ("open", "Target Tue 3 Mar 2026, 13:00 CST: target in 23 h")
    assert by_key["follow_up_le_ncmec"] == ("open", "Due Wed 1 Apr 2026, 14:00 CDT: due in 29 d 23 h")
    assert "Return checklist" not in page
    assert "Not yet" in page  # T1 and T2


def test_the_overview_shows_both_checklists_once_the_child_is_back(client, world, login, back_in_care):
    login(world.cw_a)
    rows = overview_rows(client.get(f"/episodes/{back_in_care.id}").text)
    keys = [key for _, key, _, _ in rows]
    assert len(keys) == 11 + 12
    by_key = {key: (state, deadline) for state, key, _, deadline in rows}
    assert by_key["medical_exam"] == ("open", "Due Tue 3 Mar 2026, 12:00 CST: due in 22 h")
    assert by_key["placement_visit"] == ("open", "Due Wed 4 Mar 2026, 00:00 CST: due in 1 d 10 h")
    step = client.get(f"/episodes/{back_in_care.id}/steps/medical_exam").text
    assert "Return checklist · Step 3 of 12" in step


# --- access -----------------------------------------------------------------------------------

def test_another_teams_caseworker_gets_404_and_writes_nothing(client, world, login, make_episode):
    episode = make_episode(world.child_a, world.cw_a)
    login(world.cw_b)
    assert client.get(f"/episodes/{episode.id}").status_code == 404
    assert client.get(f"/episodes/{episode.id}/steps/{LE}").status_code == 404
    response = client.post(f"/episodes/{episode.id}/steps/{LE}", data=step_form(**LE_EVIDENCE))
    assert response.status_code == 404
    assert "Alice" not in response.text
    assert client.post(f"/episodes/{episode.id}/contacts",
                       data={"purpose": "search", "person": "X", "relationship": "friend",
                             "method": "phone", "contacted_at": "2026-03-02T13:30",
                             "reached": "reached"}).status_code == 404
    assert client.get(f"/episodes/{episode.id + 999}").status_code == 404
    assert count(StepEntry) == 0 and count(ClientOp) == 0
    assert count(AuditEvent, AuditEvent.actor_id == world.cw_b.id,
                 AuditEvent.action != "auth.login") == 0


def test_the_auditor_gets_403_on_a_write_and_404_on_a_read(client, world, login, make_episode):
    episode = make_episode(world.child_a, world.cw_a)
    login(world.auditor)
    assert client.post(f"/episodes/{episode.id}/steps/{LE}",
                       data=step_form(**LE_EVIDENCE)).status_code == 403
    assert client.post(f"/episodes/{episode.id}/located", data={}).status_code == 403
    assert client.get(f"/episodes/{episode.id}").status_code == 404
    assert client.get(f"/episodes/{episode.id}/steps/{LE}").status_code == 404
    assert count(StepEntry) == 0


def test_on_call_gets_404_until_breaking_the_glass_then_can_record(client, world, login, make_episode):
    episode = make_episode(world.child_a, world.cw_a)
    login(world.oncall)
    assert client.get(f"/episodes/{episode.id}").status_code == 404
    assert client.post(f"/episodes/{episode.id}/steps/{LE}",
                       data=step_form(**LE_EVIDENCE)).status_code == 404
    assert count(StepEntry) == 0

    granted = client.post(f"/children/{world.child_a.id}/break-glass",
                          data={"reason": "Police called at 02:10 asking for the report number"})
    assert granted.status_code == 303
    assert count(BreakGlassGrant, BreakGlassGrant.user_id == world.oncall.id) == 1

    assert client.get(f"/episodes/{episode.id}").status_code == 200
    response = client.post(f"/episodes/{episode.id}/steps/{LE}", data=step_form(**LE_EVIDENCE))
    assert response.status_code == 303
    [entry] = fresh().scalars(select(StepEntry)).all()
    assert entry.recorded_by_id == world.oncall.id
    # Another child's episode stays closed to them.
    other = make_episode(world.child_b, world.cw_b)
    assert client.get(f"/episodes/{other.id}").status_code == 404


def test_the_administrator_sees_the_overview_but_not_the_sensitive_screen(
        client, world, login, back_in_care):
    login(world.admin)
    overview = client.get(f"/episodes/{back_in_care.id}")
    assert overview.status_code == 200
    assert "Screen for sex trafficking" in overview.text

    page = client.get(f"/episodes/{back_in_care.id}/steps/trafficking_screening")
    assert page.status_code == 200
    assert "This step holds sensitive information: only the child's case team sees and records it." \
        in unescape(page.text)
    assert 'name="disclosed"' not in page.text and "<form method=\"post\" action=\"/episodes" not in page.text
    response = client.post(f"/episodes/{back_in_care.id}/steps/trafficking_screening",
                           data=step_form(done_at="2026-03-02T13:40", disclosed="no",
                                          q_money_for_needs="no", q_controlled="no",
                                          q_asked_to_work="no", q_feel_unsafe="no"))
    assert response.status_code == 404
    assert count(StepEntry) == 0
    # A step that is not sensitive, the administrator may open and record.
    assert 'name="outcome"' in client.get(f"/episodes/{back_in_care.id}/steps/notify_return").text
