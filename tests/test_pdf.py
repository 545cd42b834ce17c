"""The episode's printed record (issue 4, PDF records and browser printing): the page and the PDF
share one set of data; the PDF is read back with pypdf and, once, rendered to an image."""
from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import uuid
from datetime import datetime

import pytest
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from fieldapp import db, pdf
from fieldapp.checklists import record_item, step_views
from fieldapp.contacts import log_contact
from fieldapp.episodes import mark_located, mark_returned
from fieldapp.models import AuditEvent, Episode

from helpers import fresh, utc

NARRATIVE = "She said a man called Rick drove her to a motel on Route 66"
SCRIPT = "<script>alert('record')</script> said she took the bus"
NEGATIVE_SCREEN = {"q_money_for_needs": "no", "q_controlled": "no", "q_asked_to_work": "no",
                   "q_feel_unsafe": "no"}


def record(episode_id: int, user, step_key: str, done_at: datetime, evidence: dict, *,
           outcome="done", reason="", recorded_at=None):
    with db.writing() as s:
        record_item(s, s.get(Episode, episode_id), step_key, s.merge(user), outcome=outcome,
                    done_at=done_at, recorded_at=recorded_at, raw_evidence=evidence, reason=reason,
                    client_uuid=str(uuid.uuid4()))


def contact(episode_id: int, user, at: datetime, person: str, learned: str, purpose="search"):
    with db.writing() as s:
        log_contact(s, s.get(Episode, episode_id), s.merge(user), person=person,
                    relationship="friend" if purpose == "search" else "law_enforcement",
                    method="phone", contacted_at=at, reached="reached", learned=learned,
                    purpose=purpose, client_uuid=str(uuid.uuid4()))


def text_of(response) -> tuple[str, list[str]]:
    """The PDF's text with whitespace collapsed, and each page's text likewise."""
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "application/pdf"
    pages = [" ".join((page.extract_text() or "").split())
             for page in PdfReader(io.BytesIO(response.data)).pages]
    return " ".join(pages), pages


def between(text: str, start: str, end: str | None) -> str:
    """The part of the text from ``start`` up to ``end`` (e.g. one step's block)."""
    begin = text.index(start)
    return text[begin:text.index(end, begin + len(start))] if end else text[begin:]


@pytest.fixture
def story(world, clock, make_episode, login):
    """Alice goes missing on Sunday 1 March at 08:00 CST, is found on Monday and is back in care
    at noon; the clocks in Missouri go forward on 8 March, and a service starts on 10 March.

    The police report is made 3 h 10 min after its two-hour deadline (law); the juvenile officer
    is told 2 h after the agency's 24-hour target."""
    cw = world.cw_a
    clock.set(utc(2026, 3, 1, 14, 30))
    episode = make_episode(world.child_a, cw, t0=utc(2026, 3, 1, 14))
    eid = episode.id
    clock.set(utc(2026, 3, 1, 15, 5))
    record(eid, cw, "report_ncmec", utc(2026, 3, 1, 15),
           {"case_number": "NCMEC-1498765", "method": "Phone", "reported_by": "Caseworker"})
    clock.set(utc(2026, 3, 1, 16, 30))
    # The phone's clock says 16:05 while the server says 16:30: a clock-skew flag.
    record(eid, cw, "protective_alert", utc(2026, 3, 1, 16), {"reference": "PSA-2026-77"},
           recorded_at=utc(2026, 3, 1, 16, 5))
    clock.set(utc(2026, 3, 1, 19, 15))
    record(eid, cw, "report_law_enforcement", utc(2026, 3, 1, 19, 10),
           {"agency": "Springfield PD", "phone": "417-555-0100", "report_number": "26-004411",
            "officer": "Sgt. Lee", "reported_by": "Caseworker"})
    clock.set(utc(2026, 3, 1, 20, 30))
    contact(eid, cw, utc(2026, 3, 1, 20), "Jamie (friend)", SCRIPT)
    clock.set(utc(2026, 3, 2, 16, 30))
    record(eid, cw, "notify_juvenile_officer", utc(2026, 3, 2, 16),
           {"name": "J. Officer", "method": "Phone", "result": "Told"})
    # Told on Sunday afternoon, typed in on Monday: a late entry.
    record(eid, cw, "notify_parents", utc(2026, 3, 1, 15),
           {"name": "Pat Avery", "method": "Phone", "result": "Left a message"})
    clock.set(utc(2026, 3, 2, 18, 5))
    with db.writing() as s:
        ep, worker = s.get(Episode, eid), s.merge(cw)
        mark_located(s, ep, worker, located_at=utc(2026, 3, 2, 15), located_where="in_state",
                     located_place="Friend's flat", located_by="Springfield PD",
                     status="located_pending_return", note="Found")
        mark_returned(s, ep, worker, returned_at=utc(2026, 3, 2, 18),
                      setting="foster_family_nonrelative", provider_name="Maple House")
    clock.set(utc(2026, 3, 2, 20))
    record(eid, cw, "medical_exam", utc(2026, 3, 2, 19),
           {"provider": "Dr. Quill, Mercy Clinic", "exam_date": "2026-03-02"})
    record(eid, cw, "trafficking_screening", utc(2026, 3, 2, 19, 30), NEGATIVE_SCREEN)
    record(eid, cw, "interview_factors", utc(2026, 3, 2, 19, 40),
           {"categories": ["escape", "boredom_isolation"], "notes": "Wanted to see her cousin"})
    clock.set(utc(2026, 3, 10, 15))
    record(eid, cw, "supportive_services", utc(2026, 3, 10, 14, 30),
           {"service": "Counseling or therapy", "start_date": "2026-03-10",
            "provider": "Ozark Family Counseling"})
    clock.set(utc(2026, 3, 10, 16))
    login(cw)
    return eid


def titles(episode_id: int) -> list[str]:
    return [f"{v.number}. {v.spec.title}" for v in step_views(fresh().get(Episode, episode_id))]


def pdf_events(episode_id: int) -> list[AuditEvent]:
    return list(fresh().scalars(select(AuditEvent).where(AuditEvent.action == "report.pdf",
                                                        AuditEvent.entity_id == str(episode_id))))


# --- the PDF ------------------------------------------------------------------------------------

def test_the_pdf_is_a_letter_size_attachment_never_cached(client, story):
    response = client.get(f"/episodes/{story}/record.pdf")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == f'attachment; filename="episode-{story}-record.pdf"'
    assert response.headers["Cache-Control"] == "no-store"
    box = PdfReader(io.BytesIO(response.data)).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (612, 792)  # 8.5 × 11 in


def test_the_pdf_names_every_step_with_its_clocks_in_the_agency_zone(client, story, world):
    text, _pages = text_of(client.get(f"/episodes/{story}/record.pdf"))
    steps = titles(story)
    assert len(steps) > 20
    missing = [t for t in steps if t not in text]
    assert missing == []
    # T0 at 14:00 UTC is 08:00 in Chicago (CST); the service on 10 March is after the change to CDT.
    assert "Sun 1 Mar 2026, 08:00 CST by House parent (Placement provider); how missing: Ran away" in text
    assert "Located (T1) Mon 2 Mar 2026, 09:00 CST" in text
    assert "Back in care (T2) Mon 2 Mar 2026, 12:00 CST" in text
    police = between(text, steps[0], steps[1])
    assert "Due Sun 1 Mar 2026, 10:00 CST" in police
    assert "done Sun 1 Mar 2026, 13:10 CST · recorded 1 Mar 13:15 CST · received 1 Mar 13:15 CST" in police
    assert "Report number: 26-004411" in police
    services = between(text, "Arrange supportive services", "Tell the juvenile officer, court")
    assert "done Tue 10 Mar 2026, 09:30 CDT" in services
    assert "UTC" not in text


def test_missed_for_a_law_deadline_against_after_the_target_for_an_agency_target(client, story):
    text, _pages = text_of(client.get(f"/episodes/{story}/record.pdf"))
    steps = titles(story)
    police = between(text, steps[0], steps[1])
    assert "Law" in police and "missed by 3 h 10 min" in police
    ncmec = between(text, steps[1], steps[2])
    assert "met" in ncmec and "missed" not in ncmec
    officer = next(t for t in steps if t.endswith("Tell the juvenile officer"))
    block = between(text, officer, steps[steps.index(officer) + 1])
    assert "Agency target" in block and "after the target by 2 h" in block
    assert "missed" not in block and "overdue" not in block


def test_the_pdf_flags_late_entries_and_skewed_clocks(client, story):
    text, _pages = text_of(client.get(f"/episodes/{story}/record.pdf"))
    steps = titles(story)
    parents = next(t for t in steps if t.endswith("Tell the parents"))
    alert = next(t for t in steps if t.endswith("Create a protective service alert"))
    parents_block = between(text, parents, alert)
    alert_block = between(text, alert, steps[steps.index(alert) + 1])
    assert "Late entry" in parents_block and "Clock skew" not in parents_block
    assert "Clock skew" in alert_block and "Late entry" not in alert_block
    assert "recorded 1 Mar 10:05 CST · received 1 Mar 10:30 CST" in alert_block


def test_the_pdf_carries_the_contact_log_interviews_screening_and_services(client, story):
    text, _pages = text_of(client.get(f"/episodes/{story}/record.pdf"))
    log = between(text, "Contact log", "Interviews and screening")
    assert "Sun 1 Mar 2026, 14:00 CST · Jamie (friend) (Friend) · Phone · Reached" in log
    interviews = between(text, "Interviews and screening", "Supportive services")
    assert ("Interview: what led to the absence: Escaping rules, caregivers, other youth or "
            "bullying; Boredom or isolation") in interviews
    assert "Interview: what happened while away: not recorded" in interviews
    assert "Negative" in interviews
    assert "Counseling or therapy, from 2026-03-10, Ozark Family Counseling" in text
    assert "Wanted to see her cousin" in text  # interview notes print for the case team
    # The story's stages exist but nobody has submitted them yet.
    assert "Initial response: in progress" in text and "Return: in progress" in text


def test_notes_with_markup_print_as_text(client, story):
    text, _pages = text_of(client.get(f"/episodes/{story}/record.pdf"))
    assert SCRIPT in text
    page = client.get(f"/episodes/{story}/record").text
    assert "&lt;script&gt;alert(&#39;record&#39;)&lt;/script&gt; said she took the bus" in page
    assert "<script>alert(" not in page


def test_every_page_is_numbered_and_stamped_draft(client, story):
    _text, pages = text_of(client.get(f"/episodes/{story}/record.pdf"))
    assert len(pages) >= 2
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page
        assert "DRAFT" in page
        assert "Case A-1 · episode" in page  # the running reference in the bottom margin


def test_the_record_hash_and_the_generation_line(client, story, world):
    text, _pages = text_of(client.get(f"/episodes/{story}/record.pdf"))
    printed = re.search(r"Record SHA-256: ([0-9a-f]{64})", text).group(1)
    assert "Generated Tue 10 Mar 2026, 11:00 CDT by Cw.A (Caseworker)." in text

    data = pdf.episode_record(fresh().get(Episode, story), world.cw_a)
    canonical = pdf.canonical_json(data)
    assert hashlib.sha256(canonical).hexdigest() == data["sha256"] == printed
    assert b'"discovered_at":"2026-03-01T14:00:00+00:00"' in canonical  # UTC ISO-8601
    assert b'"generated"' not in canonical  # the hash covers the content, not the printing

    # The same content printed by someone else has the same hash; new content does not.
    assert pdf.episode_record(fresh().get(Episode, story), world.sup_a)["sha256"] == printed
    contact(story, world.cw_a, utc(2026, 3, 10, 15, 30), "Sgt. Lee", "Closed the NCIC entry",
            purpose="follow_up")
    assert pdf.episode_record(fresh().get(Episode, story), world.cw_a)["sha256"] != printed


def test_generating_the_pdf_is_an_audit_event_with_its_hash(client, story, world):
    assert pdf_events(story) == []
    text, _pages = text_of(client.get(f"/episodes/{story}/record.pdf"))
    printed = re.search(r"Record SHA-256: ([0-9a-f]{64})", text).group(1)
    [event] = pdf_events(story)
    assert (event.entity, event.actor_id, event.child_id) == ("episode", world.cw_a.id,
                                                              world.child_a.id)
    assert json.loads(event.details)["sha256"] == printed
    client.get(f"/episodes/{story}/record")
    assert len(pdf_events(story)) == 1  # viewing the page is not a print


def test_weasyprint_never_runs_inside_a_transaction(client, story, monkeypatch):
    seen = []
    render = pdf.render_pdf

    def watched(html):
        seen.append(db.session().in_transaction())
        return render(html)

    monkeypatch.setattr(pdf, "render_pdf", watched)
    assert client.get(f"/episodes/{story}/record.pdf").status_code == 200
    assert seen == [False]


# --- who sees what ----------------------------------------------------------------------------

def test_an_administrator_sees_sensitive_steps_withheld(client, story, world, login):
    login(world.admin)
    text, _pages = text_of(client.get(f"/episodes/{story}/record.pdf"))
    assert "Evidence withheld: case team only" in text
    assert "Interview: what led to the absence: withheld: case team only" in text
    assert "withheld: case team only" in between(text, "Trafficking screening", "Supportive services")
    for secret in ("Dr. Quill", "Escaping rules", "Negative", "Wanted to see her cousin"):
        assert secret not in text
    assert "Report number: 26-004411" in text  # the rest of the record is there
    assert "Generated Tue 10 Mar 2026, 11:00 CDT by Admin (Administrator)." in text


def test_the_team_supervisor_sees_what_the_caseworker_sees(client, story, world, login):
    login(world.sup_a)
    text, _pages = text_of(client.get(f"/episodes/{story}/record.pdf"))
    assert "Dr. Quill, Mercy Clinic" in text and "withheld" not in text


@pytest.mark.parametrize("who", ["cw_b", "sup_b", "oncall", "auditor"])
def test_others_get_404_and_nothing_is_logged(client, story, world, login, who):
    login(getattr(world, who))
    assert client.get(f"/episodes/{story}/record.pdf").status_code == 404
    assert client.get(f"/episodes/{story}/record").status_code == 404
    assert client.get("/episodes/999999/record.pdf").status_code == 404
    assert pdf_events(story) == []


def test_after_a_disclosure_the_record_has_no_narrative(client, world, clock, make_episode, login):
    cw = world.cw_a
    clock.set(utc(2026, 3, 1, 14, 30))
    eid = make_episode(world.child_a, cw, t0=utc(2026, 3, 1, 14)).id
    clock.set(utc(2026, 3, 2, 18, 5))
    with db.writing() as s:
        ep, worker = s.get(Episode, eid), s.merge(cw)
        mark_located(s, ep, worker, located_at=utc(2026, 3, 2, 15), located_where="in_state",
                     located_place="A motel", located_by="Springfield PD",
                     status="located_pending_return", note="Found")
        mark_returned(s, ep, worker, returned_at=utc(2026, 3, 2, 18),
                      setting="foster_family_nonrelative", provider_name="Maple House")
    clock.set(utc(2026, 3, 2, 20))
    record(eid, cw, "trafficking_screening", utc(2026, 3, 2, 19),
           {"disclosed": "yes", "cac_referral_date": "2026-03-02", "q_money_for_needs": "yes",
            "notes": NARRATIVE}, reason=NARRATIVE)
    record(eid, cw, "interview_experiences", utc(2026, 3, 2, 19, 30),
           {"categories": ["exploitation"], "notes": NARRATIVE})
    login(cw)
    text, _pages = text_of(client.get(f"/episodes/{eid}/record.pdf"))
    assert "disclosed, interview stopped, referred to a CAC on 2026-03-02" in text
    assert "Interview: what happened while away: Exploitation or trafficking" in text
    assert "Notes are not printed after a disclosure." in text
    assert "Rick" not in text and "motel on Route 66" not in text
    page = client.get(f"/episodes/{eid}/record").text
    assert "Rick" not in page


# --- the page, browser printing and the links -------------------------------------------------

def test_the_record_page_shows_the_same_record_and_prints_with_its_own_sheet(client, story):
    page = client.get(f"/episodes/{story}/record")
    assert page.status_code == 200
    html = page.text
    assert re.search(r'<link rel="stylesheet" href="/static/css/print\.[0-9a-f]{8}\.css" media="print">', html)
    assert f'href="/episodes/{story}/record.pdf" hx-boost="false"' in html
    assert "missed by 3 h 10 min" in html and "after the target by 2 h" in html
    assert '<p class="draft-stamp badge warn">DRAFT</p>' in html
    assert "Initial response: in progress" in html
    text, _pages = text_of(client.get(f"/episodes/{story}/record.pdf"))
    printed = re.search(r"Record SHA-256: ([0-9a-f]{64})", text).group(1)
    assert f'<span class="hash">{printed}</span>' in html  # the same data, the same hash


def test_printing_hides_the_apps_navigation(client, story):
    text, _pages = text_of(client.get(f"/episodes/{story}/record.pdf"))
    for chrome in ("Skip to content", "My work", "Caseload", "Log out", "Cw.A, Caseworker",
                   "Draft: not every review stage"):
        assert chrome not in text
    assert "Missing-child episode record: Alice Avery" in text


def test_the_episode_overview_links_the_record_and_the_pdf(client, story):
    html = client.get(f"/episodes/{story}").text
    assert f'href="/episodes/{story}/record"' in html
    assert f'href="/episodes/{story}/record.pdf" hx-boost="false"' in html


def test_weasyprint_loads_only_the_apps_static_files(app):
    fetch = pdf.StaticFiles(app.static_folder, "/static/")
    sheet = fetch(pdf.BASE_URL + "static/css/print.css")
    assert sheet.content_type == "text/css" and b"size: Letter" in sheet.read()
    for url in ("https://example.com/static/css/print.css", "file:///etc/passwd",
                pdf.BASE_URL + "static/../fieldapp/settings.py",
                pdf.BASE_URL + "static/%2e%2e/pyproject.toml", pdf.BASE_URL + "episodes/1",
                "http://fieldapp.invalid/static/css/print.css"):
        with pytest.raises((ValueError, FileNotFoundError)):
            fetch(url)


def test_page_one_renders_to_an_image_at_letter_size(client, story, tmp_path):
    if shutil.which("pdftoppm") is None:
        pytest.fail("pdftoppm is missing: install poppler-utils")
    source = tmp_path / "record.pdf"
    source.write_bytes(client.get(f"/episodes/{story}/record.pdf").data)
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile",
                    str(source), str(tmp_path / "page1")], check=True)
    with Image.open(tmp_path / "page1.png") as image:
        assert image.size == (510, 660)  # 8.5 × 11 in at 60 dpi
        rgb = image.convert("RGB")
    pixels = rgb_pixels(rgb)
    ink = sum(1 for r, g, b in pixels if r + g + b < 300)
    assert ink > len(pixels) * 0.01  # there is text on the page
    # The DRAFT stamp: red, in the top margin at the right.
    stamp = rgb_pixels(rgb.crop((300, 0, 510, 60)))
    assert sum(1 for r, g, b in stamp if r > 140 and g < 90 and b < 90) > 50
    # Nothing but the stamp is drawn in that top margin.
    assert sum(1 for r, g, b in rgb_pixels(rgb.crop((0, 0, 300, 45))) if r + g + b < 600) == 0


def rgb_pixels(image) -> list[tuple[int, int, int]]:
    data = image.tobytes()
    return [tuple(data[i:i + 3]) for i in range(0, len(data), 3)]


def test_the_draft_stamp_goes_only_when_every_stage_is_approved(client, story, monkeypatch):
    def stage(label, state, signed):
        signature = ({"name": "Sam Rivera", "role": "Supervisor", "at": utc(2026, 3, 10, 15),
                      "sha256": "ab" * 32} if signed else None)
        return {"label": label, "state": state, "signature": signature,
                "history": [{"at": utc(2026, 3, 10, 14), "action": "submitted", "by": "Cw.A",
                             "comment": ""}]}

    reviewed = {"stages": [stage("Initial response", "approved", True),
                           stage("Return", "submitted", False)], "addenda": []}
    monkeypatch.setattr(pdf, "review_section", lambda episode: reviewed)
    text, pages = text_of(client.get(f"/episodes/{story}/record.pdf"))
    assert all("DRAFT" in page for page in pages)
    assert "Initial response: approved" in text and "Return: submitted" in text
    assert f"Signed Tue 10 Mar 2026, 10:00 CDT by Sam Rivera (Supervisor); content SHA-256 {'ab' * 32}" in text
    assert "No review recorded yet" not in text

    reviewed["stages"][1] = stage("Return", "approved", True)
    text, pages = text_of(client.get(f"/episodes/{story}/record.pdf"))
    assert not any("DRAFT" in page for page in pages)
    assert "Return: approved" in text
