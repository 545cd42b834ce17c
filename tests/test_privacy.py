"""Privacy (issue 8, Security 6): names, dates of birth, notes and photos never appear in logs or
in audit payloads.

One child's whole story is run through the app, as its users would: a roster import, a missing
episode with steps and contacts, the identification profile and a photo, the packet, the
record's PDF, a sync from a phone, located, returned, review and sign-off, and the exports.
Meanwhile every log record (the root logger at DEBUG) and everything written to stdout and stderr
is captured, and a real HTTP server's access log too. Then the logs and every audit event are
searched for each distinctive value, in the spellings it could take, and for its SHA-256, which
anyone could compute from a guessed name and match against a log of plain hashes.
"""
from __future__ import annotations

import base64
import hashlib
import http.cookiejar
import io
import logging
import threading
import urllib.parse
import urllib.request
import uuid
from datetime import date

from PIL import Image, ImageDraw
from sqlalchemy import select
from werkzeug.serving import make_server

from helpers import PASSWORD, fresh
from fieldapp.models import AuditEvent, Child, Episode, ReviewStage

FIRST, LAST = "Zephyrine", "Quillfeather"
BORN = date(2011, 7, 19)
# A person's name in each place one is typed, and a note in each free-text field.
PEOPLE = {
    "discovered_by": "Ottoline Brambleworth",
    "officer": "Wolfgang Peppercorn",
    "contact": "Hyacinth Mugwort",
    "synced_contact": "Wilhelmina Gorsebrook",
    "located_by": "Percival Thistlewood",
    "provider": "Gwendolyn Farthingale",
}
NOTES = {
    "open": "note marigold vortex",
    "last_seen": "larkspur arcade",
    "contact": "note juniper cascade",
    "synced": "note quartz meadow",
    "status": "note cinnabar lantern",
    "clothing": "note tangerine parka",
    "circumstances": "note heliotrope ferry",
    "complexion": "note saffron freckles",
    "trafficking": "note obsidian harbour",
    "located": "note bluebell station",
    "returned": "note cobalt lodge",
    "reason": "note vermilion delay",
    "comment": "note periwinkle badge",
    "photo_name": "zephyrine-bedroom-selfie",
}
DEVICE_CLOCK = "2026-03-02T19:58:00Z"


def spellings_of_the_birth_date(born: date) -> list[str]:
    return [born.isoformat(), born.strftime("%m/%d/%Y"), f"{born.month}/{born.day}/{born.year}",
            born.strftime("%d %b %Y"), born.strftime("%B %d, %Y"), born.strftime("%Y%m%d"),
            f"{born.day} {born.strftime('%b')} {born.year}", born.strftime("%d/%m/%Y")]


def photo_bytes() -> bytes:
    image = Image.new("RGB", (640, 480), "lightblue")
    ImageDraw.Draw(image).ellipse((100, 80, 400, 380), fill="tan")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def secrets_to_look_for(photo: bytes, stored_photos: list[bytes]) -> dict[str, str]:
    """Each distinctive value, labelled, in every spelling a leak could take."""
    found = {"first name": FIRST, "last name": LAST, "full name": f"{FIRST} {LAST}",
             "name, last first": f"{LAST}, {FIRST}"}
    for i, spelling in enumerate(spellings_of_the_birth_date(BORN)):
        found[f"birth date #{i}"] = spelling
    found.update({f"person: {key}": value for key, value in PEOPLE.items()})
    found.update({f"note: {key}": value for key, value in NOTES.items()})
    for label, blob in [("photo", photo)] + [(f"stored photo {i}", b) for i, b in
                                              enumerate(stored_photos)]:
        middle = len(blob) // 2
        found[f"{label} as base64"] = base64.b64encode(blob)[middle:middle + 32].decode()
        found[f"{label} as hex"] = blob[middle:middle + 16].hex()
    # A plain hash of a guessable value is as good as the value.
    guessable = [FIRST, LAST, f"{FIRST} {LAST}", BORN.isoformat(), *PEOPLE.values(),
                 *NOTES.values()]
    for value in guessable:
        found[f"sha256 of {value!r}"] = hashlib.sha256(value.encode()).hexdigest()
    return found


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    folded = text.lower()
    return sorted(label for label, value in secrets.items() if value.lower() in folded)


def run_story(world, login, client):
    """The whole story of one child, through the app. Returns the child's and episode's ids."""
    login(world.admin)
    roster = ("case_id,first_name,last_name,date_of_birth,sex,county,caseworker_username,"
              "placement_setting,placement_provider,placement_started_on\n"
              f"PRIV-1,{FIRST},{LAST},{BORN.isoformat()},F,Greene,cw.a,foster_family_relative,"
              f"{PEOPLE['provider']},2025-11-01\n")
    imported = client.post("/admin/roster", data={"file": (io.BytesIO(roster.encode()),
                                                           f"{LAST}-roster.csv")},
                           content_type="multipart/form-data")
    assert imported.status_code == 200, imported.text
    child = fresh().scalar(select(Child).where(Child.case_id == "PRIV-1"))
    assert (child.first_name, child.date_of_birth) == (FIRST, BORN)
    client.post("/logout")

    login(world.cw_a)
    assert FIRST in client.get(f"/caseload?q={FIRST}").text
    opened = client.post(f"/children/{child.id}/missing", data={
        "status": "whereabouts_unknown", "discovered_at": "2026-03-02T13:30",
        "discovered_by_role": "placement_provider", "discovered_by_name": PEOPLE["discovered_by"],
        "how_missing": "ran_away", "last_seen_at": "2026-03-02T12:45",
        "last_seen_place": NOTES["last_seen"], "note": NOTES["open"]})
    assert opened.status_code in (302, 303), opened.text
    episode = fresh().scalar(select(Episode).where(Episode.child_id == child.id))

    def step(key, **fields):
        data = {"outcome": "done", "done_at": "2026-03-02T13:40", "reason": "",
                "recorded_at": DEVICE_CLOCK, "client_uuid": str(uuid.uuid4()), **fields}
        response = client.post(f"/episodes/{episode.id}/steps/{key}", data=data)
        assert response.status_code in (302, 303), (key, response.text)

    step("report_law_enforcement", ev_agency="Springfield PD", ev_phone="(417) 555-0100",
         ev_report_number="26-004411", ev_officer=PEOPLE["officer"], ev_reported_by="Caseworker")
    step("report_ncmec", outcome="attempted", reason=NOTES["reason"], ev_method="Online",
         ev_reported_by="Caseworker")
    contact = client.post(f"/episodes/{episode.id}/contacts", data={
        "purpose": "search", "person": PEOPLE["contact"], "relationship": "relative",
        "method": "phone", "contacted_at": "2026-03-02T13:45", "reached": "reached",
        "learned": NOTES["contact"], "client_uuid": str(uuid.uuid4()), "recorded_at": DEVICE_CLOCK})
    assert contact.status_code == 303, contact.text

    for section, data in {
        "description": {"race_ethnicity": "White", "height": "5 ft 1 in", "weight": "98 lb",
                        "hair_colour": "Red", "eye_colour": "Grey",
                        "complexion": NOTES["complexion"]},
        "endangerment": {"pregnancy": "", "medications": "", "suicidal": "",
                         "trafficking": NOTES["trafficking"], "health_risks": ""},
    }.items():
        saved = client.post(f"/children/{child.id}/profile/{section}", data=data)
        assert saved.status_code in (302, 303), (section, saved.text)
    photo = photo_bytes()
    uploaded = client.post(f"/children/{child.id}/photos",
                           data={"camera": (io.BytesIO(photo), f"{NOTES['photo_name']}.jpg"),
                                 "taken_on": "2026-03-01"}, content_type="multipart/form-data")
    assert uploaded.status_code in (302, 303), uploaded.text

    details = client.post(f"/episodes/{episode.id}/packet", data={
        "clothing": NOTES["clothing"], "circumstances": NOTES["circumstances"]})
    assert details.status_code == 303, details.text
    for path in (f"/episodes/{episode.id}/packet", f"/episodes/{episode.id}/packet.pdf",
                 f"/episodes/{episode.id}/packet.txt", f"/episodes/{episode.id}/record.pdf",
                 f"/children/{child.id}"):
        assert client.get(path).status_code == 200, path

    token = client.get("/api/v1/session").get_json()["csrf_token"]
    synced = client.post("/api/v1/sync", headers={"X-CSRFToken": token}, json={
        "device_time": "2026-03-02T20:00:00Z", "held": 1, "ops": [{
            "uuid": str(uuid.uuid4()), "kind": "search_contact", "episode_id": episode.id,
            "recorded_at": "2026-03-02T19:50:00Z",
            "fields": {"purpose": "search", "person": PEOPLE["synced_contact"],
                       "relationship": "friend", "method": "in_person",
                       "contacted_at": "2026-03-02T19:30:00Z", "reached": "reached",
                       "learned": NOTES["synced"]}}]})
    assert synced.get_json()["results"][0]["status"] == "applied", synced.get_json()

    located = client.post(f"/episodes/{episode.id}/located", data={
        "located_at": "2026-03-02T13:50", "located_where": "out_of_state",
        "located_place": NOTES["located"], "located_by": PEOPLE["located_by"],
        "status": "located_pending_return", "location_address": "", "location_adult": "",
        "location_verified_how": "", "note": NOTES["status"]})
    assert located.status_code in (302, 303), located.text
    returned = client.post(f"/episodes/{episode.id}/returned", data={
        "returned_at": "2026-03-02T13:55", "setting": "group_home_staff",
        "provider_name": "Oak Lodge", "note": NOTES["returned"]})
    assert returned.status_code in (302, 303), returned.text

    stage = fresh().scalar(select(ReviewStage).where(ReviewStage.episode_id == episode.id,
                                                     ReviewStage.stage == "initial_response"))
    from fieldapp.reviews import open_steps
    reasons = {f"reason_{v.spec.key}": NOTES["reason"] for v in open_steps(stage)}
    assert client.post(f"/review-stages/{stage.id}/submit", data=reasons).status_code == 303
    client.post("/logout")
    login(world.sup_a)
    sent_back = client.post(f"/review-stages/{stage.id}/return", data={
        "comment": NOTES["comment"], "comment_report_law_enforcement": NOTES["comment"]})
    assert sent_back.status_code == 303
    client.post("/logout")
    login(world.cw_a)
    assert client.post(f"/review-stages/{stage.id}/submit", data=reasons).status_code == 303
    client.post("/logout")
    login(world.sup_a)
    approved = client.post(f"/review-stages/{stage.id}/approve", data={"password": PASSWORD})
    assert approved.status_code == 303, approved.text
    assert client.get(f"/episodes/{episode.id}/review").status_code == 200
    client.post("/logout")

    login(world.admin)
    for path in ("/compliance/M1/episodes.csv", "/compliance/reconciliation.csv",
                 "/compliance/export.db", "/compliance.pdf", "/admin/audit"):
        assert client.get(path).status_code < 500, path
    return {"child": child.id, "episode": episode.id, "photo": photo}


def test_no_name_birth_date_note_or_photo_reaches_the_logs_or_the_audit_log(
        world, policies, login, client, caplog, capfd):
    caplog.set_level(logging.DEBUG)  # the root logger, so every library's records are seen
    story = run_story(world, login, client)
    from fieldapp.models import Photo
    stored = [row.data for row in fresh().scalars(select(Photo))]
    secrets = secrets_to_look_for(story["photo"], stored)

    log_text = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    out, err = capfd.readouterr()
    assert caplog.records, "nothing was captured: the capture is not working"
    assert leaks(log_text, secrets) == []
    assert leaks(out + err, secrets) == []

    events = fresh().scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert len(events) > 20  # the story was recorded
    for event in events:
        payload = f"{event.action} {event.entity} {event.entity_id} {event.details}"
        assert leaks(payload, secrets) == [], (event.action, event.details)


def test_a_real_servers_access_log_keeps_no_name_from_an_address(app, world, caplog):
    """A search by name puts the name in the address: the access log must not keep it."""
    caplog.set_level(logging.DEBUG)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        opener.open(f"{base}/login", data=urllib.parse.urlencode(
            {"username": "cw.a", "password": PASSWORD}).encode())
        for path in (f"/caseload?q={FIRST}+{LAST}", f"/caseload?q={BORN.isoformat()}",
                     f"/login?next=/caseload%3Fq%3D{LAST}"):
            with opener.open(base + path) as response:
                assert response.status == 200
    finally:
        server.shutdown()
        thread.join()
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("GET /caseload" in line for line in lines), lines  # the log is there...
    secrets = {"first name": FIRST, "last name": LAST, "birth date": BORN.isoformat()}
    assert leaks("\n".join(lines), secrets) == []  # ...without the name
