"""The static files, served under fingerprinted names, compressed, and cached for a year.

At app start every served file under static/ is read once: its content hash gives it a second
name (``css/app.css`` is also ``css/app.3fa9c2e1.css``), and its gzip-compressed bytes are kept
next to the plain ones. ``url_for('static', filename='css/app.css')`` builds the fingerprinted
address, so every template and the service worker's shell list get it with no change of their
own. A fingerprinted address never changes content, so browsers may keep it for a year without
asking again; the plain name still answers, but must be revalidated each time.

Why in memory rather than .gz files written by ``make assets``: the whole folder is about 100 KB
(30 KB compressed), so holding it costs each worker less than one template cache, and there is
no second copy on disk that could go stale after an edit, nor a build step a deploy could forget.
Compressing it takes a few milliseconds when a worker starts.
"""
from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
import time
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, abort, current_app, request
from werkzeug.wrappers import Response

from .compression import accepts_gzip

FINGERPRINT_LENGTH = 8
FINGERPRINTED = re.compile(r"^(?P<stem>.+)\.(?P<digest>[0-9a-f]{%d})(?P<suffix>\.[A-Za-z0-9]+)?$"
                           % FINGERPRINT_LENGTH)
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Files under static/ that are not served from /static/: the service worker's source is served,
# filled in, at /sw.js (a worker under /static/ could control nothing but /static/).
NOT_SERVED = frozenset({"js/sw.js"})
# Types worth compressing; images are compressed already. Text types say their charset.
TEXT_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
              ".svg": "image/svg+xml", ".json": "application/json",
              ".webmanifest": "application/manifest+json", ".txt": "text/plain; charset=utf-8"}
EXTENSION = "fieldapp.assets"


@dataclass(frozen=True)
class Asset:
    name: str            # relative to static/, with forward slashes
    digest: str          # the first FINGERPRINT_LENGTH hex digits of its SHA-256
    content_type: str
    data: bytes
    gzipped: bytes | None  # None when compressing would not make it smaller
    mtime_ns: int

    @property
    def fingerprinted_name(self) -> str:
        path = Path(self.name)
        stem = self.name[:len(self.name) - len(path.suffix)] if path.suffix else self.name
        return f"{stem}.{self.digest}{path.suffix}"


def is_served(relative: str) -> bool:
    """Hidden files (editor swap files, .gitkeep) and NOT_SERVED stay private."""
    return relative not in NOT_SERVED and not any(part.startswith(".") for part in relative.split("/"))


def load_asset(folder: Path, relative: str) -> Asset:
    path = folder / relative
    data = path.read_bytes()
    suffix = path.suffix.lower()
    content_type = (TEXT_TYPES.get(suffix) or mimetypes.guess_type(path.name)[0]
                    or "application/octet-stream")
    gzipped = None
    if suffix in TEXT_TYPES:
        # mtime=0: the same bytes in every worker and on every deploy of the same file.
        squeezed = gzip.compress(data, compresslevel=9, mtime=0)
        gzipped = squeezed if len(squeezed) < len(data) else None
    return Asset(relative, hashlib.sha256(data).hexdigest()[:FINGERPRINT_LENGTH], content_type,
                 data, gzipped, path.stat().st_mtime_ns)


def scan(folder: Path) -> dict[str, Asset]:
    """Every served file under ``folder``, by its name relative to it."""
    if not folder.is_dir():
        return {}
    names = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    return {name: load_asset(folder, name) for name in names if is_served(name)}


class Assets:
    """The table of static files for one app. In debug mode it follows edits on disk; otherwise
    it is read once, as a deploy does not change files under a running worker."""

    RECHECK_SECONDS = 1.0  # in debug, look at the disk at most this often (a page has ~10 links)

    def __init__(self, folder: Path, follow_edits: bool):
        self.folder, self.follow_edits = folder, follow_edits
        self._table = scan(folder)
        self._checked = time.monotonic()

    def _current(self) -> dict[str, Asset]:
        if self.follow_edits and time.monotonic() - self._checked >= self.RECHECK_SECONDS:
            self._checked = time.monotonic()
            if self._changed():
                self._table = scan(self.folder)
        return self._table

    def _changed(self) -> bool:
        on_disk = {path.relative_to(self.folder).as_posix(): path.stat().st_mtime_ns
                   for path in self.folder.rglob("*") if path.is_file()}
        on_disk = {name: mtime for name, mtime in on_disk.items() if is_served(name)}
        return on_disk != {name: asset.mtime_ns for name, asset in self._table.items()}

    def get(self, name: str) -> Asset | None:
        return self._current().get(name)

    def url_name(self, name: str) -> str:
        """The fingerprinted name for ``name``, or ``name`` itself when it is no served file
        (the folder's own address, a file added after start)."""
        asset = self.get(name)
        return asset.fingerprinted_name if asset else name

    def find(self, requested: str) -> tuple[Asset | None, bool]:
        """The file ``requested`` names and whether it was asked for by its fingerprint. A
        fingerprint that is not the current content's names nothing: serving today's bytes
        under yesterday's immutable address would pin the wrong file in caches for a year."""
        table = self._current()
        if requested in table:
            return table[requested], False
        match = FINGERPRINTED.match(requested)
        if match is None:
            return None, False
        asset = table.get(match["stem"] + (match["suffix"] or ""))
        if asset is None or asset.digest != match["digest"]:
            return None, False
        return asset, True

    def total(self) -> int:
        return len(self._current())


def assets_of(app: Flask) -> Assets:
    return app.extensions[EXTENSION]


def file_name(folder: Path | str, requested: str) -> str:
    """The name on disk of the file ``requested`` names, by its own name or by its current
    fingerprint; ``requested`` itself when neither matches (the caller then finds no file).
    Needs no app: WeasyPrint's fetcher reads the folder directly."""
    folder = Path(folder)
    if (folder / requested).is_file():
        return requested
    match = FINGERPRINTED.match(requested)
    if match is None:
        return requested
    name = match["stem"] + (match["suffix"] or "")
    path = folder / name
    if (is_served(name) and path.is_file()
            and hashlib.sha256(path.read_bytes()).hexdigest()[:FINGERPRINT_LENGTH] == match["digest"]):
        return name
    return requested


def serve_static(filename: str) -> Response:
    """The static view: the file's bytes, compressed when the client takes gzip, with an ETag
    for revalidation, and a year's caching under the fingerprinted name."""
    asset, fingerprinted = assets_of(current_app).find(filename)
    if asset is None:
        abort(404)
    compressed = asset.gzipped is not None and accepts_gzip(request)
    response = Response(asset.gzipped if compressed else asset.data, content_type=asset.content_type)
    if asset.gzipped is not None:
        response.vary.add("Accept-Encoding")
    if compressed:
        response.headers["Content-Encoding"] = "gzip"
    # Each representation has its own tag, so a cache never answers a gzip request with plain bytes.
    response.set_etag(asset.digest + ("-gz" if compressed else ""))
    response.headers["Cache-Control"] = IMMUTABLE if fingerprinted else REVALIDATE
    return response.make_conditional(request)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = Assets(Path(app.static_folder), follow_edits=app.debug)
    app.view_functions["static"] = serve_static

    @app.url_defaults
    def _fingerprint(endpoint, values):
        if endpoint == "static" and values.get("filename"):
            values["filename"] = assets_of(app).url_name(values["filename"])
