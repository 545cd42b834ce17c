"""The report packet (issue 7): one tap from the checklist to a one-page PDF for law enforcement
and a text for NCMEC, holding every required field and saying plainly which are missing."""
from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from PIL import Image, ImageDraw
from pypdf import PdfReader
from sqlalchemy import select

from fieldapp import db, identification, photos
from fieldapp.episodes import mark_located, mark_returned
from fieldapp.models import AuditEvent, Child, Episode, PacketDetails, User

from helpers import NOW, count, field_error, fresh, utc

PROFILE = {
    "race_ethnicity": "White, not Hispanic", "height": "5 ft 4 in", "weight": "120 lb",
    "hair_colour": "Brown, shoulder length", "eye_colour": "Green", "complexion": "Fair, freckles",
    "tattoos": "Small star, left wrist", "scars": "Scar above the right eyebrow",
    "piercings": "Both ears", "pregnancy": "About 4 months pregnant",
    "medications": "Insulin, twice daily", "suicidal": "One attempt in 2025",
    "trafficking": "Older boyfriend, 23, met online", "health_risks": "Type 1 diabetes",
    "associates": "Jordan (boyfriend), 417-555-0188", "places": "Battlefield Mall food court",
    "phones": "417-555-0177", "social_media": "Instagram @alice_example",
}
DETAILS = {"clothing": "Red hoodie, black jeans, white sneakers",
           "circumstances": "Left after an argument about her phone"}
AGENCY_PHONE = "417-555-0000"


def text_of(response) -> tuple[str, int]:
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(response.data))
    text = " ".join(" ".join((p.extract_text() or "").split()) for p in reader.pages)
    return text, len(reader.pages)


def portrait() -> bytes:
    image = Image.new("RGB", (900, 1200), "lightsteelblue")
    ImageDraw.Draw(image).ellipse((250, 200, 650, 700), fill="tan")
    out = io.BytesIO()
    image.save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def contacts(app, world):
    app.config["AGENCY_24H_PHONE"] = AGENCY_PHONE
    with db.writing() as s:
        s.get(User, world.cw_a.id).phone = "417-555-0101"
        s.get(User, world.sup_a.id).phone = "417-555-0102"


@pytest.fixture
def episode(world, make_episode, clock):
    """Alice ran once before (found in a Tulsa motel) and is missing again since an hour ago."""
    earlier = make_episode(world.child_a, world.cw_a, t0=utc(2025, 11, 2, 14))
    clock.set(utc(2025, 11, 5, 14))
    with db.writing() as s:
        previous = s.get(Episode, earlier.id)
        mark_located(s, previous, s.merge(world.cw_a), located_at=utc(2025, 11, 4, 12),
                     located_where="out_of_state", located_place="A motel in Tulsa",
                     located_by="Tulsa PD", status="located_pending_return", note="Found")
        mark_returned(s, previous, s.merge(world.cw_a), returned_at=utc(2025, 11, 5, 12),
                      setting="foster_family_nonrelative", provider_name="Maple House")
    clock.set(NOW)
    return make_episode(world.child_a, world.cw_a, t0=NOW - timedelta(hours=1))


@pytest.fixture
def complete(world, episode, contacts):
    """Everything the packet asks for is known."""
    prepared = photos.prepare(portrait(), None)
    with db.writing() as s:
        child, actor = s.get(Child, world.child_a.id), s.merge(world.cw_a)
        photos.store(s, child, actor, prepared, NOW.date() - timedelta(days=30))
        for section in identification.SECTIONS:
            identification.update_section(s, child, actor, section, PROFILE)
        e = s.get(Episode, episode.id)
        e.last_seen_at, e.last_seen_place = NOW - timedelta(hours=3), "Bus stop on Grand St"
        s.add(PacketDetails(episode_id=e.id, updated_at=NOW, **DETAILS))
    return episode


def test_the_pdf_is_one_page_for_law_enforcement_with_every_required_field(
        world, complete, login, client):
    login(world.cw_a)
    text, pages = text_of(client.get(f"/episodes/{complete.id}/packet.pdf"))
    assert pages == 1
    assert text.startswith("FOR LAW ENFORCEMENT")
    for expected in [
        "Missing child: Alice Avery", "Date of birth 2010-05-17 (age 15)", "Sex Female",
        *PROFILE.values(), *DETAILS.values(),
        "Photo Taken 2026-01-31", "Last seen Mon 2 Mar 2026, 11:00 CST", "Bus stop on Grand St",
        "Reported as Ran away", "discovered missing Mon 2 Mar 2026, 13:00 CST",
        "Missing 2 Nov 2025; found 4 Nov 2025 at A motel in Tulsa (out of state)",
        "Caseworker Cw.A, 417-555-0101", "Supervisor Sup.A, 417-555-0102",
        f"Agency, 24 hours {AGENCY_PHONE}",
        "Law-enforcement agency ____", "Report number ____", "NCIC number ____",
    ]:
        assert expected in text, expected
    assert "MISSING" not in text.replace("Missing", "")
    assert "Required items missing" not in text
    # Only what the report calls for: no case notes, no case id.
    assert "Insulin twice daily" not in text  # the child's medical_notes field
    assert "A-1" not in text


def test_the_pdf_embeds_the_stored_photo(world, complete, login, client):
    login(world.cw_a)
    response = client.get(f"/episodes/{complete.id}/packet.pdf")
    page = PdfReader(io.BytesIO(response.data)).pages[0]
    images = list(page.images)
    assert len(images) == 1
    assert images[0].image.size == (900, 1200)


def test_missing_items_are_named_plainly(world, episode, login, client):
    login(world.cw_a)
    text, pages = text_of(client.get(f"/episodes/{episode.id}/packet.pdf"))
    assert pages == 1
    missing = text[text.index("Required items missing:"):].split(".", 1)[0]
    for label in ["Photo", "Race and ethnicity", "Height", "Weight", "Hair colour", "Eye colour",
                  "Complexion", "Tattoos", "Pregnancy", "Prescription medications",
                  "Suicidal tendencies", "Vulnerability to sex trafficking",
                  "Date and time last seen", "Place last seen",
                  "Circumstances of the disappearance", "Clothing when last seen",
                  "Caseworker's phone", "Supervisor's phone", "Agency's 24-hour number"]:
        assert label in missing, label
    assert "Known associates" not in missing  # requested, not required
    assert text.count("MISSING") >= 15  # and each blank is marked where it belongs
    assert "Known associates None known" in text


def test_the_page_lists_what_is_missing_and_offers_both_forms(world, complete, login, client):
    login(world.cw_a)
    with db.writing() as s:
        s.get(User, world.sup_a.id).phone = None
    html = client.get(f"/episodes/{complete.id}/packet").get_data(as_text=True)
    assert "1 required item missing" in html and "<li>Supervisor&#39;s phone</li>" in html
    assert f"/episodes/{complete.id}/packet.pdf" in html
    assert f"/episodes/{complete.id}/packet.txt" in html
    assert 'src="data:image/jpeg;base64,' in html  # the page carries its photo itself
    assert f'href="/children/{world.child_a.id}/photos/' in html
    assert 'download="photo-2026-01-31.jpg"' in html


def test_the_text_is_laid_out_for_ncmecs_form(world, complete, login, client):
    login(world.cw_a)
    response = client.get(f"/episodes/{complete.id}/packet.txt")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    lines = text.splitlines()
    for line in ["Name: Alice Avery", "Height: 5 ft 4 in", "Eye colour: Green",
                 f"Clothing: {DETAILS['clothing']}", "Place last seen: Bus stop on Grand St",
                 "Pregnancy: About 4 months pregnant",
                 "Social-media handles: Instagram @alice_example",
                 "- Missing 2025-11-02; found 2025-11-04 at A motel in Tulsa (out of state)",
                 f"Agency 24-hour number: {AGENCY_PHONE}", "NCIC number:"]:
        assert line in lines, line
    assert "[MISSING]" not in text
    assert "&#" not in text and "&amp;" not in text  # plain text, not HTML-escaped


def test_sharing_is_audited_with_the_hash_and_never_the_content(world, complete, login, client):
    login(world.cw_a)
    client.get(f"/episodes/{complete.id}/packet.pdf")
    client.get(f"/episodes/{complete.id}/packet.txt")
    events = fresh().scalars(select(AuditEvent).where(AuditEvent.action.like("packet.%"))
                             .order_by(AuditEvent.seq)).all()
    assert [e.action for e in events] == ["packet.pdf", "packet.text"]
    for event in events:
        details = json.loads(event.details)
        assert set(details) == {"sha256", "missing"} and details["missing"] == 0
        assert len(details["sha256"]) == 64
        assert event.entity == "episode" and event.entity_id == str(complete.id)
        assert "Alice" not in event.details and "pregnant" not in event.details
    # The same packet, twice: the same hash.
    assert json.loads(events[0].details)["sha256"] == json.loads(events[1].details)["sha256"]


def test_one_tap_asks_first_for_what_the_episode_does_not_know(world, episode, login, client):
    login(world.cw_a)
    form = client.get(f"/episodes/{episode.id}/packet")
    html = form.get_data(as_text=True)
    assert form.status_code == 200
    for name in ("last_seen_at", "last_seen_place", "clothing", "circumstances"):
        assert f'name="{name}"' in html
    response = client.post(f"/episodes/{episode.id}/packet", data={
        "last_seen_at": "2026-03-02T11:15", "last_seen_place": "Bus stop on Grand St", **DETAILS})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/episodes/{episode.id}/packet?details=skip")
    e = fresh().get(Episode, episode.id)
    assert e.last_seen_at == utc(2026, 3, 2, 17, 15) and e.last_seen_place == "Bus stop on Grand St"
    assert fresh().get(PacketDetails, episode.id).clothing == DETAILS["clothing"]
    event = fresh().scalars(select(AuditEvent).where(AuditEvent.action == "packet.details")).one()
    assert json.loads(event.details) == {"fields": ["last_seen_at", "last_seen_place", "clothing",
                                                    "circumstances"]}
    assert "hoodie" not in event.details
    # Now the details are known: the tap goes straight to the packet.
    page = client.get(f"/episodes/{episode.id}/packet").get_data(as_text=True)
    assert "Download the PDF for law enforcement" in page and DETAILS["clothing"] in page


def test_a_known_last_sighting_is_not_asked_again_or_overwritten(world, complete, login, client):
    login(world.cw_a)
    html = client.get(f"/episodes/{complete.id}/packet?details=ask").get_data(as_text=True)
    assert 'name="last_seen_at"' not in html and "Bus stop on Grand St" in html
    client.post(f"/episodes/{complete.id}/packet", data={
        "last_seen_at": "2026-03-02T09:00", "last_seen_place": "Elsewhere", **DETAILS})
    assert fresh().get(Episode, complete.id).last_seen_place == "Bus stop on Grand St"


@pytest.mark.parametrize("value, message", [
    ("2026-03-02T13:30", "before the absence was discovered"),  # after T0 (13:00 CST)
    ("2026-03-03T09:00", "cannot be in the future"),
    ("last night", "Give the date and time"),
])
def test_a_bad_last_sighting_is_refused_next_to_its_field(world, episode, login, client, value,
                                                          message):
    login(world.cw_a)
    response = client.post(f"/episodes/{episode.id}/packet",
                           data={"last_seen_at": value, **DETAILS})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in field_error(html, "last_seen_at")
    assert DETAILS["clothing"] in html  # what was typed is kept
    assert count(PacketDetails) == 0 and fresh().get(Episode, episode.id).last_seen_at is None


@pytest.mark.parametrize("who", ["cw_b", "sup_b", "auditor", "admin"])
def test_anyone_outside_the_case_team_gets_404_for_the_packet(world, complete, login, client, who):
    login(getattr(world, who))
    for suffix in ("", ".pdf", ".txt", "?details=skip"):
        assert client.get(f"/episodes/{complete.id}/packet{suffix}").status_code == 404, suffix
    status = client.post(f"/episodes/{complete.id}/packet", data=DETAILS).status_code
    assert status == (403 if who == "auditor" else 404)
    assert count(AuditEvent, AuditEvent.action.like("packet.%")) == 0


def test_the_supervisor_and_on_call_with_a_grant_get_the_packet(world, complete, login, client):
    login(world.sup_a)
    assert client.get(f"/episodes/{complete.id}/packet.pdf").status_code == 200
    client.post("/logout")
    login(world.oncall)
    assert client.get(f"/episodes/{complete.id}/packet.pdf").status_code == 404
    client.post(f"/children/{world.child_a.id}/break-glass",
                data={"reason": "Police at the door asking for her photo and description"})
    assert client.get(f"/episodes/{complete.id}/packet.pdf").status_code == 200


def test_there_is_no_packet_once_the_episode_has_ended(world, complete, login, client, clock):
    clock.set(NOW + timedelta(hours=5))
    with db.writing() as s:
        e = s.get(Episode, complete.id)
        mark_located(s, e, s.merge(world.cw_a), located_at=NOW + timedelta(hours=2),
                     located_where="in_state", located_place="Home", located_by="Police",
                     status="located_pending_return", note="Found")
        mark_returned(s, e, s.merge(world.cw_a), returned_at=NOW + timedelta(hours=4),
                      setting="foster_family_nonrelative", provider_name="Maple House")
    login(world.cw_a)
    assert client.get(f"/episodes/{complete.id}/packet.pdf").status_code == 404


def test_the_pdf_is_never_publicly_cacheable(world, complete, login, client):
    login(world.cw_a)
    response = client.get(f"/episodes/{complete.id}/packet.pdf")
    assert "no-store" in response.headers["Cache-Control"]
    assert "public" not in response.headers["Cache-Control"]
    assert response.headers["Content-Disposition"].startswith("attachment;")


def test_the_reporting_steps_link_to_the_packet_and_the_others_do_not(world, episode, login,
                                                                      client):
    login(world.cw_a)
    link = f'href="/episodes/{episode.id}/packet"'
    for key in ("report_law_enforcement", "report_ncmec", "report_contents"):
        assert link in client.get(f"/episodes/{episode.id}/steps/{key}").get_data(as_text=True), key
    assert link not in client.get(
        f"/episodes/{episode.id}/steps/notify_parents").get_data(as_text=True)
