"""Children's photos (issue 7): no metadata survives, bad files are refused with nothing stored,
and only the case team ever sees a photo."""
from __future__ import annotations

import hashlib
import io
import json
from datetime import date

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

from fieldapp import photos
from fieldapp.models import AuditEvent, Child, ChildPhoto, Photo

from helpers import count, field_error, fresh

GPS_IFD = 0x8825
MAKE, MODEL, DATETIME_ORIGINAL_IFD, ORIENTATION = 0x010F, 0x0110, 0x8769, 0x0112
PHONE_MODEL = "FieldPhone 9 Pro"


def jpeg_with_gps(size=(1600, 1200), orientation: int | None = None) -> bytes:
    """A phone's JPEG: a camera make and model, and GPS coordinates of where it was taken."""
    image = Image.new("RGB", size, "lightblue")
    ImageDraw.Draw(image).ellipse((size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2),
                                  fill="tan")
    exif = Image.Exif()
    exif[MAKE] = "FieldPhone"
    exif[MODEL] = PHONE_MODEL
    if orientation:
        exif[ORIENTATION] = orientation
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (37.0, 12.0, 31.5)  # Springfield, Missouri
    gps[3] = "W"
    gps[4] = (93.0, 17.0, 54.2)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def upload(client, child_id: int, raw: bytes, name="photo.jpg", taken_on="2026-03-01",
           field="camera"):
    return client.post(f"/children/{child_id}/photos",
                       data={field: (io.BytesIO(raw), name), "taken_on": taken_on},
                       content_type="multipart/form-data")


def test_the_test_image_really_carries_gps():
    exif = Image.open(io.BytesIO(jpeg_with_gps())).getexif()
    assert exif.get_ifd(GPS_IFD)[2] == (37.0, 12.0, 31.5)
    assert exif[MODEL] == PHONE_MODEL


def test_a_stored_photo_keeps_no_exif_and_no_gps(world, login, client):
    raw = jpeg_with_gps()
    login(world.cw_a)
    response = upload(client, world.child_a.id, raw)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/children/{world.child_a.id}/profile")

    stored = fresh().scalars(select(Photo)).one()
    image = Image.open(io.BytesIO(stored.data))
    assert image.format == "JPEG"
    assert dict(image.getexif()) == {}
    assert image.getexif().get_ifd(GPS_IFD) == {}
    assert not {"exif", "icc_profile", "xmp", "comment"} & set(image.info)
    assert b"Exif" not in stored.data and PHONE_MODEL.encode() not in stored.data
    # Resized on the server, stored under the hash of exactly these bytes.
    assert max(image.size) == photos.LONGEST_SIDE and image.size == (stored.width, stored.height)
    assert stored.sha256 == hashlib.sha256(stored.data).hexdigest()
    assert stored.byte_size == len(stored.data)

    row = fresh().scalars(select(ChildPhoto)).one()
    assert (row.child_id, row.photo_sha256, row.taken_on) == (world.child_a.id, stored.sha256,
                                                                date(2026, 3, 1))
    assert fresh().get(Child, world.child_a.id).photo_taken_on == date(2026, 3, 1)


def test_the_audit_event_holds_the_hash_never_the_photo(world, login, client):
    login(world.cw_a)
    upload(client, world.child_a.id, jpeg_with_gps())
    stored = fresh().scalars(select(Photo)).one()
    event = fresh().scalars(select(AuditEvent).where(AuditEvent.action == "photo.add")).one()
    details = json.loads(event.details)
    assert details == {"photo_sha256": stored.sha256, "byte_size": len(stored.data)}
    assert event.child_id == world.child_a.id
    assert len(event.details) < 200


def test_a_sideways_phone_photo_is_stored_upright(world, login, client):
    # Orientation 6: the camera held on its side; the pixels must be turned, since the tag is gone.
    login(world.cw_a)
    upload(client, world.child_a.id, jpeg_with_gps(size=(1600, 1200), orientation=6))
    stored = fresh().scalars(select(Photo)).one()
    assert (stored.width, stored.height) == (900, 1200)


def test_the_same_photo_twice_is_stored_once(world, login, client, make_child):
    login(world.cw_a)
    other = make_child(world.cw_a, "A-2")
    raw = jpeg_with_gps()
    assert upload(client, world.child_a.id, raw).status_code == 303
    assert upload(client, other.id, raw, field="photo").status_code == 303
    assert count(Photo) == 1 and count(ChildPhoto) == 2


def _png(size, mode="1") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("raw, name, message", [
    (b"case notes, not a picture\n" * 20, "notes.txt", "not a photo fieldapp can read"),
    (jpeg_with_gps()[:3000], "cut.jpg", "not a photo fieldapp can read"),  # truncated: corrupt
    (b"\xff\xd8\xff\xe0" + b"\x00" * 500, "broken.jpg", "not a photo fieldapp can read"),
    (b"", "empty.jpg", "Take a photo or choose one"),
    (b"GIF89a" + b"\x00" * 40, "fake.gif", "not a photo fieldapp can read"),
])
def test_unreadable_files_are_refused_and_nothing_is_stored(world, login, client, raw, name,
                                                            message):
    login(world.cw_a)
    response = upload(client, world.child_a.id, raw, name=name)
    assert response.status_code == 422
    assert message in field_error(response.get_data(as_text=True), "camera")
    assert "Nothing was saved" in response.get_data(as_text=True) or not raw
    assert count(Photo) == 0 and count(ChildPhoto) == 0
    assert count(AuditEvent, AuditEvent.action == "photo.add") == 0
    assert fresh().get(Child, world.child_a.id).photo_taken_on is None


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF"])
def test_other_phone_formats_are_stored_as_opaque_jpeg(world, login, client, fmt):
    image = Image.new("RGBA", (400, 300), (0, 0, 0, 0))  # transparent: laid on white
    ImageDraw.Draw(image).rectangle((100, 100, 300, 200), fill=(200, 30, 30, 255))
    raw = io.BytesIO()
    (image.convert("P") if fmt == "GIF" else image).save(raw, fmt)
    login(world.cw_a)
    response = upload(client, world.child_a.id, raw.getvalue(), name=f"p.{fmt.lower()}")
    assert response.status_code == 303
    stored = Image.open(io.BytesIO(fresh().scalars(select(Photo)).one().data))
    assert (stored.format, stored.mode, stored.size) == ("JPEG", "RGB", (400, 300))
    if fmt != "GIF":
        assert stored.getpixel((10, 10)) > (245, 245, 245)


def test_only_phone_formats_reach_a_decoder(world, login, client):
    # A perfectly good TIFF: Pillow reads it, but uploads only ever meet the JPEG, PNG, WebP and
    # GIF decoders.
    tiff = io.BytesIO()
    Image.new("RGB", (300, 400), "grey").save(tiff, "TIFF")
    login(world.cw_a)
    response = upload(client, world.child_a.id, tiff.getvalue(), name="scan.tif")
    assert response.status_code == 422
    assert "not a photo fieldapp can read" in field_error(response.get_data(as_text=True), "camera")
    assert count(Photo) == 0


@pytest.mark.parametrize("size", [(8000, 7000), (20000, 10000)])
def test_a_decompression_bomb_is_refused_before_decoding(world, login, client, size):
    # A few kilobytes that declare 56 and 200 megapixels: over fieldapp's limit, and over twice
    # Pillow's own (where Pillow raises rather than warns).
    raw = _png(size)
    assert len(raw) < 200_000
    login(world.cw_a)
    response = upload(client, world.child_a.id, raw, name="bomb.png")
    assert response.status_code == 422
    assert "too large" in field_error(response.get_data(as_text=True), "camera")
    assert count(Photo) == 0 and count(ChildPhoto) == 0


def test_an_upload_over_the_size_limit_gets_the_form_back(app, world, login, client):
    app.config["MAX_CONTENT_LENGTH"] = 60_000
    raw = jpeg_with_gps(size=(1600, 1200)) + b"\x00" * 70_000
    login(world.cw_a)
    response = upload(client, world.child_a.id, raw)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_error(html, "camera") == ("The file is larger than the 58 KB limit. "
                                           "Nothing was saved.")
    assert 'enctype="multipart/form-data"' in html
    # With CSRF on, the token check reads the body first and meets the limit there: same answer.
    app.config["WTF_CSRF_ENABLED"] = True
    response = upload(client, world.child_a.id, raw)
    assert response.status_code == 422
    assert "58 KB limit" in field_error(response.get_data(as_text=True), "camera")
    assert count(Photo) == 0 and count(ChildPhoto) == 0


def test_the_size_limit_is_checked_by_prepare_too():
    with pytest.raises(photos.PhotoRefused) as refused:
        photos.prepare(b"x" * 2_000_000, 1024 * 1024)
    assert "larger than the 1 MB limit" in refused.value.errors["photo"]


@pytest.mark.parametrize("taken_on, message", [
    ("yesterday", "as YYYY-MM-DD"),
    ("2026-03-09", "cannot be in the future"),
    ("2009-01-01", "older than the child"),
])
def test_a_bad_date_is_refused_next_to_its_field(world, login, client, taken_on, message):
    login(world.cw_a)
    response = upload(client, world.child_a.id, jpeg_with_gps(), taken_on=taken_on)
    assert response.status_code == 422
    assert message in field_error(response.get_data(as_text=True), "taken_on")
    assert count(Photo) == 0


def test_the_case_team_sees_the_photo_privately(world, login, client):
    login(world.cw_a)
    upload(client, world.child_a.id, jpeg_with_gps())
    stored = fresh().scalars(select(Photo)).one()
    url = f"/children/{world.child_a.id}/photos/{stored.sha256}.jpg"
    profile = client.get(f"/children/{world.child_a.id}/profile").get_data(as_text=True)
    assert url in profile
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.data == stored.data
    assert response.headers["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize("who", ["cw_b", "sup_b", "auditor", "admin", "oncall"])
def test_anyone_outside_the_case_team_gets_404_for_the_photo(app, world, login, client, who):
    login(world.cw_a)
    upload(client, world.child_a.id, jpeg_with_gps())
    sha = fresh().scalars(select(Photo)).one().sha256
    client.post("/logout")
    login(getattr(world, who))
    assert client.get(f"/children/{world.child_a.id}/photos/{sha}.jpg").status_code == 404
    assert client.get(f"/children/{world.child_a.id}/photos").status_code == 404


def test_a_hash_opens_only_its_own_childs_photo(world, login, client, make_child):
    login(world.cw_a)
    upload(client, world.child_a.id, jpeg_with_gps())
    sha = fresh().scalars(select(Photo)).one().sha256
    sibling = make_child(world.cw_a, "A-3")
    assert client.get(f"/children/{sibling.id}/photos/{sha}.jpg").status_code == 404


def test_outsiders_cannot_upload(world, login, client):
    login(world.cw_b)
    assert upload(client, world.child_a.id, jpeg_with_gps()).status_code == 404
    client.post("/logout")
    login(world.auditor)
    assert upload(client, world.child_a.id, jpeg_with_gps()).status_code == 403
    assert count(Photo) == 0


def test_the_photo_form_offers_the_camera_and_a_saved_photo(world, login, client):
    login(world.cw_a)
    html = client.get(f"/children/{world.child_a.id}/photos").get_data(as_text=True)
    assert 'accept="image/*"' in html and 'capture="environment"' in html
    assert 'name="photo"' in html and 'name="camera"' in html
