"""Children's photos: checked, re-encoded without any metadata, and stored by content hash.

``prepare`` does the slow, untrusted part (decoding with Pillow, resizing, re-encoding) and must
run before ``db.writing()`` (DESIGN §9). It never copies metadata: the pixels are drawn into a
fresh image and saved as a new JPEG, so EXIF (GPS above all), XMP, ICC profiles and comments are
all left behind. ``store`` then keeps the bytes once per SHA-256, and the audit event names that
hash, never the blob.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from PIL import (GifImagePlugin, Image, ImageFile, ImageOps, JpegImagePlugin, PngImagePlugin,
                 UnidentifiedImageError, WebPImagePlugin)
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from . import clock
from .audit import record_event
from .errors import FieldErrors
from .models import Child, ChildPhoto, IdentificationProfile, Photo, User

# What phones and cameras hand over, and the only decoders an upload ever reaches: Pillow is told
# to try these alone, so its dozens of other parsers never see untrusted bytes (and it never
# probes its optional plugins, whose failed imports warn). The imports register them. A phone's
# multi-picture JPEG (MPO) opens through the JPEG decoder.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
_DECODERS = (GifImagePlugin, JpegImagePlugin, PngImagePlugin, WebPImagePlugin)
# Far above any phone camera (a 48 MP sensor), far below what would exhaust a worker's memory:
# a small file that declares huge dimensions (a "decompression bomb") is refused before decoding.
MAX_PIXELS = 50_000_000
LONGEST_SIDE = 1200  # a clear head-and-shoulders print, and a small row in the database
JPEG_QUALITY = 85
NOT_AN_IMAGE = ("This file is not a photo fieldapp can read. Take the photo again, or upload "
                "a JPEG or PNG. Nothing was saved.")


class PhotoRefused(FieldErrors):
    pass


@dataclass(frozen=True)
class PreparedPhoto:
    data: bytes
    sha256: str
    width: int
    height: int


def size_label(limit_bytes: int) -> str:
    """The upload limit as people say it: "5 MB", or "500 KB" below a megabyte."""
    if limit_bytes >= 1024 * 1024:
        return f"{limit_bytes / (1024 * 1024):.0f} MB"
    return f"{limit_bytes // 1024} KB"


def too_large_message(limit_bytes: int) -> str:
    return f"The file is larger than the {size_label(limit_bytes)} limit. Nothing was saved."


@contextmanager
def _truncation_refused():
    """WeasyPrint switches on Pillow's process-wide LOAD_TRUNCATED_IMAGES when it is imported,
    which would let a cut-off upload through padded with grey. Decoding an upload turns it off
    for the moment; WeasyPrint itself only ever reads complete files (static ones and stored
    photos), so it cannot be hurt by the window."""
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before


def _decoded(raw: bytes) -> Image.Image:
    """The image, fully decoded and turned upright, or PhotoRefused."""
    try:
        with warnings.catch_warnings(), _truncation_refused():
            # Pillow only warns between its own limit and twice it; here that is a refusal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw), formats=ACCEPTED_FORMATS)
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise PhotoRefused({"photo": f"The image is too large ({width} × {height} pixels; "
                                             f"the limit is {MAX_PIXELS // 1_000_000} megapixels). "
                                             "Nothing was saved."})
            # A JPEG can be decoded at 1/2, 1/4 or 1/8 scale: much faster for a 12 MP photo.
            image.draft("RGB", (LONGEST_SIDE, LONGEST_SIDE))
            image.load()
            return ImageOps.exif_transpose(image)
    except PhotoRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoRefused({"photo": "The image is too large to process. Nothing was saved."})
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, IndexError,
            TypeError, KeyError):
        # Decoders of untrusted files fail in many ways (truncated data, broken headers);
        # every one of them is a file we cannot use, never a server error.
        raise PhotoRefused({"photo": NOT_AN_IMAGE})


def _rgb(image: Image.Image) -> Image.Image:
    """Opaque RGB: transparency is laid on white, as a print would show it."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def prepare(raw: bytes, limit_bytes: int | None) -> PreparedPhoto:
    """Check, resize and re-encode an uploaded photo. Slow: call it outside any transaction."""
    if not raw:
        raise PhotoRefused({"photo": "Take a photo or choose one to upload."})
    if limit_bytes and len(raw) > limit_bytes:
        raise PhotoRefused({"photo": too_large_message(limit_bytes)})
    image = _rgb(_decoded(raw))
    image.thumbnail((LONGEST_SIDE, LONGEST_SIDE), Image.Resampling.LANCZOS)
    # A new image holds pixels only: no info dictionary, so nothing of the original's
    # metadata can ride along into the saved file.
    clean = Image.new("RGB", image.size)
    clean.paste(image)
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    data = out.getvalue()
    return PreparedPhoto(data=data, sha256=hashlib.sha256(data).hexdigest(),
                         width=clean.width, height=clean.height)


def parse_taken_on(value: str, born: date, today: date) -> date:
    """The day the photo was taken, from a form's YYYY-MM-DD."""
    try:
        day = date.fromisoformat((value or "").strip())
    except ValueError:
        raise PhotoRefused({"taken_on": "Give the date the photo was taken, as YYYY-MM-DD."})
    if day > today:
        raise PhotoRefused({"taken_on": "The date the photo was taken cannot be in the future."})
    if day < born:
        raise PhotoRefused({"taken_on": "The photo cannot be older than the child."})
    return day


def store(db_session: Session, child: Child, actor: User, prepared: PreparedPhoto,
          taken_on: date) -> ChildPhoto:
    """Keep the photo (inside ``db.writing()``): the bytes once per hash, a row for this child,
    the child's latest photo date, and an audit event holding the hash."""
    dialect = db_session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Photo)
    # The same bytes uploaded twice, even at once from two workers, are one row.
    db_session.execute(insert.values(
        sha256=prepared.sha256, data=prepared.data, content_type="image/jpeg",
        width=prepared.width, height=prepared.height, byte_size=len(prepared.data),
        created_at=clock.now()).on_conflict_do_nothing(index_elements=["sha256"]))
    row = ChildPhoto(child_id=child.id, photo_sha256=prepared.sha256, taken_on=taken_on,
                     recorded_by_id=actor.id, recorded_at=clock.now())
    db_session.add(row)
    if child.photo_taken_on is None or taken_on >= child.photo_taken_on:
        child.photo_taken_on = taken_on
    profile = db_session.get(IdentificationProfile, child.id)
    if profile is not None:
        profile.appearance_changed_on = None  # the new photo shows the new appearance
    db_session.flush()
    record_event(db_session, actor, "photo.add", "child_photo", row.id, child_id=child.id,
                 changes={"photo_sha256": prepared.sha256, "byte_size": len(prepared.data)})
    return row


def latest_photo(db_session: Session, child: Child) -> ChildPhoto | None:
    return db_session.scalar(select(ChildPhoto).where(ChildPhoto.child_id == child.id)
                             .order_by(ChildPhoto.taken_on.desc(), ChildPhoto.id.desc()).limit(1))


def photo_of_child(db_session: Session, child: Child, sha256: str) -> Photo | None:
    """The photo, only if it is one of this child's: a hash alone opens nothing."""
    return db_session.scalar(select(Photo).join(ChildPhoto, ChildPhoto.photo_sha256 == Photo.sha256)
                             .where(ChildPhoto.child_id == child.id, Photo.sha256 == sha256)
                             .limit(1))
