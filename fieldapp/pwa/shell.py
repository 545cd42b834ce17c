"""The app shell: the files every phone keeps so that fieldapp opens without a signal.

This is the one list of them. The service worker precaches it into a versioned cache, and the
worker's version is a hash of these files (and of the release label), so that changing any of
them ships a new worker that replaces the old shell cache.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

# Static files, relative to static/. Icons made at build time may be missing in a bare checkout;
# only the ones on disk are listed.
SHELL_STATIC = (
    "css/app.css",
    "vendor/htmx.min.js",
    "js/app.js",
    "js/outbox-store.js",
    "js/offline.js",
    "js/outbox-page.js",
    "icons/icon.svg",
    "icons/icon-192.png",
    "icons/icon-512.png",
)
# Pages with nothing about any user or child in them, by endpoint.
SHELL_PAGES = ("pwa.offline_page", "pwa.manifest")
# Files that shape the worker's behaviour without being served from the shell.
WORKER_SOURCE = "js/sw.js"
OFFLINE_TEMPLATE = "pwa/offline.html"

ICON_SIZES = (192, 512)


def shell_files(static_folder: Path) -> list[str]:
    """The shell's static files that exist, relative to ``static_folder``."""
    return [name for name in SHELL_STATIC if (static_folder / name).is_file()]


def shell_urls(static_folder: Path, url_for: Callable[..., str]) -> list[str]:
    """Every address the worker precaches."""
    return ([url_for("static", filename=name) for name in shell_files(static_folder)]
            + [url_for(endpoint) for endpoint in SHELL_PAGES])


def shell_version(static_folder: Path, template_folder: Path, release: str) -> str:
    """A short hash of the shell's files, the worker's source, the offline page and ``release``."""
    digest = hashlib.sha256(release.encode())
    paths = ([static_folder / name for name in shell_files(static_folder)]
             + [static_folder / WORKER_SOURCE, template_folder / OFFLINE_TEMPLATE])
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:16]
