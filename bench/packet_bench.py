"""Benchmark: from the tap on "Report packet" to a downloadable packet PDF (issue 7).

Run with ``make bench`` (never part of the tests). It builds, in a temporary SQLite database, a
missing child with a complete identification profile, a photo taken on a 12-megapixel phone
(processed as an upload would be), two prior episodes and the last sighting's details, then
times, through the app, one tap: ``GET /episodes/<id>/packet`` (the page the tap opens) followed
by ``GET /episodes/<id>/packet.pdf`` (access check, the packet's data, the template, WeasyPrint
with the photo, the audit event). The median of ``--runs`` after one warm-up; target 1.5 s.

    python bench/packet_bench.py [--runs 10] [--keep packet.pdf]
"""
from __future__ import annotations

import argparse
import gc
import io
import platform
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import weasyprint
from PIL import Image, ImageDraw
from pypdf import PdfReader
from werkzeug.security import generate_password_hash

from common import child_in_placement, sqlite_bench_app
from fieldapp import db, identification, photos
from fieldapp.accounts import create_user, get_or_create_team
from fieldapp.clock import FixedClock
from fieldapp.episodes import mark_located, mark_returned, open_episode
from fieldapp.models import Child, PacketDetails
from fieldapp.policy import install_packaged

TARGET_SECONDS = 1.5
PASSWORD = "benchmark password, not a secret"
NOW = datetime(2026, 3, 2, 20, tzinfo=UTC)
PROFILE = {
    "race_ethnicity": "White, not Hispanic", "height": "5 ft 4 in", "weight": "120 lb",
    "hair_colour": "Brown, shoulder length, often in a ponytail", "eye_colour": "Green",
    "complexion": "Fair, freckles across the nose", "tattoos": "Small star on the left wrist",
    "scars": "Scar above the right eyebrow (2 cm)", "piercings": "Both ears, two in the left",
    "pregnancy": "About four months pregnant; prenatal care at the county clinic",
    "medications": "Insulin twice daily; without it she becomes ill within a day",
    "suicidal": "One attempt in 2025; safety plan in place",
    "trafficking": "Older boyfriend (23) met online; gifts and a phone from him",
    "health_risks": "Type 1 diabetes; asthma (inhaler)",
    "associates": "Jordan (boyfriend), 417-555-0188; Kayla (friend from school)",
    "places": "Battlefield Mall food court; the skate park on Grant Ave; bus station",
    "phones": "417-555-0177 (own); 417-555-0188 (boyfriend's)",
    "social_media": "Instagram @example_handle; Snapchat example.handle",
}


def phone_photo() -> bytes:
    """A 12-megapixel JPEG, as a phone camera hands it over."""
    image = Image.new("RGB", (3024, 4032), (200, 210, 225))
    draw = ImageDraw.Draw(image)
    draw.ellipse((900, 2900, 2100, 4600), fill=(40, 70, 140))
    draw.ellipse((1000, 900, 2000, 2500), fill=(225, 180, 140))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def build(app, clock: FixedClock) -> int:
    with app.app_context():
        prepared = photos.prepare(phone_photo(), None)  # before the write, as an upload is
        with db.writing() as s:
            install_packaged(s)
            team = get_or_create_team(s, "Bench team")
            hashed = generate_password_hash(PASSWORD)
            worker = create_user(s, username="bench.worker", display_name="Bench Worker",
                                 role="caseworker", password_hash=hashed, team=team,
                                 phone="417-555-0101")
            create_user(s, username="bench.supervisor", display_name="Bench Supervisor",
                        role="supervisor", password_hash=hashed, team=team, phone="417-555-0102")
            child = child_in_placement(s, worker, clock.now())
            s.flush()
            photos.store(s, child, worker, prepared, date(2026, 1, 10))
            for section in identification.SECTIONS:
                identification.update_section(s, child, worker, section, PROFILE)
        for months_ago in (9, 4):
            t0 = NOW - timedelta(days=30 * months_ago)
            clock.set(t0 + timedelta(days=3))
            with db.writing() as s:
                actor, kid = s.merge(worker), s.get(Child, child.id)
                episode = open_episode(s, kid, actor, status="whereabouts_unknown",
                                       discovered_at=t0, discovered_by_role="placement_provider",
                                       discovered_by_name="House parent", how_missing="ran_away",
                                       note="Bench")
                mark_located(s, episode, actor, located_at=t0 + timedelta(days=1),
                             located_where="in_state", located_place="A friend's flat",
                             located_by="Springfield PD", status="located_pending_return",
                             note="Found")
                mark_returned(s, episode, actor, returned_at=t0 + timedelta(days=2),
                              setting="group_home_staff", provider_name="Maple House")
        clock.set(NOW)
        with db.writing() as s:
            episode = open_episode(s, s.get(Child, child.id), s.merge(worker),
                                   status="whereabouts_unknown",
                                   discovered_at=NOW - timedelta(hours=1),
                                   discovered_by_role="placement_provider",
                                   discovered_by_name="House parent", how_missing="ran_away",
                                   last_seen_at=NOW - timedelta(hours=3),
                                   last_seen_place="Bus stop on Grand St", note="Bench")
            s.add(PacketDetails(episode_id=episode.id, updated_at=NOW,
                                clothing="Red hoodie, black jeans, white sneakers",
                                circumstances="Left after an argument about her phone"))
            return episode.id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="also write the PDF here")
    args = parser.parse_args(argv)

    clock = FixedClock(NOW)
    app, _folder = sqlite_bench_app("packet-bench", clock, TESTING=True, WTF_CSRF_ENABLED=False,
                                    AGENCY_24H_PHONE="417-555-0000")
    episode_id = build(app, clock)
    client = app.test_client()
    response = client.post("/login", data={"username": "bench.worker", "password": PASSWORD})
    assert response.status_code == 302, "could not log in"

    page_times: list[float] = []
    pdf_times: list[float] = []

    def tap() -> bytes:
        gc.collect()
        started = time.perf_counter()
        page = client.get(f"/episodes/{episode_id}/packet")
        opened = time.perf_counter()
        document = client.get(f"/episodes/{episode_id}/packet.pdf")
        done = time.perf_counter()
        assert page.status_code == 200 and b"Download the PDF" in page.data, page.status_code
        assert document.status_code == 200, document.status_code
        page_times.append(opened - started)
        pdf_times.append(done - opened)
        return document.data

    document = tap()  # warm-up: fonts, templates, the policy cache
    page_times.clear()
    pdf_times.clear()
    for _ in range(args.runs):
        document = tap()
    if args.keep:
        args.keep.write_bytes(document)

    reader = PdfReader(io.BytesIO(document))
    text = reader.pages[0].extract_text() or ""
    assert "Required items missing" not in text, "the bench packet should be complete"
    totals = [p + d for p, d in zip(page_times, pdf_times)]
    median = statistics.median(totals)
    print(f"packet_bench: python {platform.python_version()}, WeasyPrint {weasyprint.__version__}, "
          f"{platform.machine()}, {args.runs} runs after one warm-up")
    print(f"packet_bench: complete profile, 12 MP photo stored at {photos.LONGEST_SIDE} px, "
          f"2 prior episodes; {len(reader.pages)} page(s), {len(document) // 1024} KiB")
    print(f"packet_page_median: {statistics.median(page_times):.2f} s")
    print(f"packet_pdf_only_median: {statistics.median(pdf_times):.2f} s")
    print(f"packet_pdf_median: {median:.2f} s")
    print(f"target_packet_within_{TARGET_SECONDS:.1f}_s: "
          f"{'met' if median <= TARGET_SECONDS else 'NOT met'}")
    app.extensions["fieldapp.engine"].dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
