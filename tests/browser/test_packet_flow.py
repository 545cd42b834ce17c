"""A caseworker on a phone keeps a child's photo ready, then, the child gone, taps "Report packet"
on the police-report step, gives the clothing and circumstances on one short form, and downloads
the one-page PDF for the officer. Every page on the way is checked with axe and the app's CSP."""
from __future__ import annotations

import io
import re
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from .conftest import log_in

pytestmark = pytest.mark.browser

CLOTHING = "Green puffer jacket, grey sweatpants, red backpack"
CIRCUMSTANCES = "Walked out after school pick-up; did not get on the bus"


def query(live_server, sql: str, *params) -> list[sqlite3.Row]:
    with closing(sqlite3.connect(f"file:{live_server.database_path}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, params).fetchall()


def phone_photo() -> bytes:
    image = Image.new("RGB", (1200, 1600), "lightsteelblue")
    ImageDraw.Draw(image).ellipse((350, 300, 850, 950), fill="tan")
    exif = Image.Exif()
    exif.get_ifd(0x8825)[2] = (37.0, 12.0, 31.5)  # where it was taken: must not be kept
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_caseworker_produces_the_report_packet_in_one_tap(page: Page, live_server, check_page,
                                                         tmp_path):
    log_in(page, live_server, "caseworker")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Caseload").click()
    in_placement = page.locator(".child-row").filter(
        has=page.locator(".badge", has_text=re.compile(r"^\s*In placement\s*$")))
    # The second: the caseload test keeps the first, the checklist test takes the last.
    row = in_placement.nth(1)
    name = row.locator(".child-link .name").inner_text()
    row.locator(".child-link").click()
    expect(page.get_by_role("heading", level=1, name=name, exact=True)).to_be_visible()
    child_id = int(re.search(r"/children/(\d+)$", page.url).group(1))

    # 1. Before anything happens: the profile, and a new photo from the phone.
    page.get_by_role("link", name="Identification and photo").click()
    expect(page.get_by_role("heading", level=1, name="Identification profile")).to_be_visible()
    check_page(page)
    page.get_by_role("link", name="Take or add a photo").click()
    expect(page.get_by_role("heading", level=1, name=f"Photo of {name}")).to_be_visible()
    expect(page.get_by_label("Take a photo")).to_have_attribute("capture", "environment")
    check_page(page)
    page.get_by_label("Or choose a saved photo").set_input_files(
        files=[{"name": "IMG_0042.jpg", "mimeType": "image/jpeg", "buffer": phone_photo()}])
    page.get_by_role("button", name="Save the photo").click()
    expect(page.get_by_text("Photo saved.")).to_be_visible()
    photo = page.get_by_role("img", name=re.compile(rf"^Photo of {re.escape(name)}, taken "))
    expect(photo).to_be_visible()
    assert page.evaluate("(img) => img.naturalWidth", photo.element_handle()) == 900
    stored = query(live_server, "SELECT p.data FROM photos p JOIN child_photos c "
                   "ON c.photo_sha256 = p.sha256 WHERE c.child_id = ? ORDER BY c.id DESC",
                   child_id)[0]["data"]
    assert Image.open(io.BytesIO(stored)).getexif().get_ifd(0x8825) == {}

    # 2. The child goes missing.
    page.goto(f"/children/{child_id}")
    page.get_by_role("link", name="Report missing").click()
    zone = ZoneInfo(page.locator("#discovered_at-hint").inner_text().split(" time.")[0])
    page.get_by_label("When the absence was discovered (T0)").fill(
        (datetime.now(UTC) - timedelta(minutes=30)).astimezone(zone).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Discovered by", exact=True).select_option(label="Placement provider")
    page.get_by_label("Name of the person who discovered it").fill("House parent (fictional)")
    page.get_by_label("How the child went missing").select_option(label="Ran away")
    page.get_by_label("Note", exact=True).fill("Not back from school.")
    page.get_by_role("button", name="Open the missing checklist").click()
    expect(page).to_have_url(re.compile(r"/episodes/\d+/steps/report_law_enforcement$"))
    episode_id = int(re.search(r"/episodes/(\d+)/", page.url).group(1))

    # 3. One tap on the police-report step; the episode does not know the last sighting yet.
    page.locator("#wizard").get_by_role("link", name=re.compile("^Report packet")).click()
    expect(page.get_by_role("heading", level=1,
                            name="Report packet: the last sighting")).to_be_visible()
    check_page(page)
    page.get_by_label("When the child was last seen").fill(
        (datetime.now(UTC) - timedelta(hours=2)).astimezone(zone).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Where the child was last seen").fill("Outside Central High (fictional)")
    page.get_by_label("Clothing when last seen").fill(CLOTHING)
    page.get_by_label("Circumstances of the disappearance").fill(CIRCUMSTANCES)
    page.get_by_role("button", name="Make the packet").click()

    expect(page.get_by_role("heading", level=1, name="Report packet")).to_be_visible()
    missing = page.get_by_role("alert")
    # The demo sets no 24-hour number: the packet says so, and nothing about the sighting.
    expect(missing).to_contain_text("Agency's 24-hour number")
    expect(missing).not_to_contain_text("Clothing")
    expect(missing).not_to_contain_text("Photo")
    expect(page.locator(".packet")).to_contain_text(CLOTHING)
    expect(page.locator(".packet img.packet-photo")).to_be_visible()
    check_page(page)

    # 4. The PDF for the officer.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the PDF for law enforcement").click()
    download = download_info.value
    assert download.suggested_filename == f"report-packet-episode-{episode_id}.pdf"
    path = tmp_path / "packet.pdf"
    download.save_as(path)
    reader = PdfReader(path)
    assert len(reader.pages) == 1
    text = " ".join((reader.pages[0].extract_text() or "").split())
    assert text.startswith("FOR LAW ENFORCEMENT")
    for expected in (f"Missing child: {name}", CLOTHING, CIRCUMSTANCES,
                     "Outside Central High (fictional)", "NCIC number"):
        assert expected in text, expected
    assert len(list(reader.pages[0].images)) == 1
    events = query(live_server, "SELECT details FROM audit_events WHERE action = 'packet.pdf' "
                   "AND entity_id = ?", str(episode_id))
    assert len(events) == 1 and CLOTHING not in events[0]["details"]
