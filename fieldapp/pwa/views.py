"""The PWA's routes: the manifest, the service worker (served from / so it controls every page),
the offline page that the shared shell cache holds, and the page listing what this phone holds."""
from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, current_app, jsonify, render_template, url_for
from flask_login import login_required

from ..assets import FINGERPRINT_LENGTH
from ..web import render
from .shell import ICON_SIZES, WORKER_SOURCE, shell_urls, shell_version

bp = Blueprint("pwa", __name__)

THEME_COLOUR = "#0b5cad"  # the header's colour (static/css/app.css --brand)


def _static() -> Path:
    return Path(current_app.static_folder)


def _version() -> str:
    return shell_version(_static(), Path(current_app.template_folder), current_app.config["RELEASE"])


@bp.get("/manifest.webmanifest")
def manifest():
    icons = [{"src": url_for("static", filename="icons/icon.svg"), "sizes": "any",
              "type": "image/svg+xml", "purpose": "any"}]
    icons += [{"src": url_for("static", filename=f"icons/icon-{size}.png"),
               "sizes": f"{size}x{size}", "type": "image/png", "purpose": "any maskable"}
              for size in ICON_SIZES if (_static() / f"icons/icon-{size}.png").is_file()]
    response = jsonify(name="fieldapp", short_name="fieldapp",
                       description="Missing-child and return checklists for caseworkers",
                       start_url=url_for("cases.home"), scope="/", display="standalone",
                       background_color="#f3f5f7", theme_color=THEME_COLOUR, icons=icons)
    response.mimetype = "application/manifest+json"
    return response


@bp.get("/sw.js")
def service_worker():
    """The worker's source with its version and shell list filled in.

    ``no-cache`` makes the browser ask each time it checks for an update, so a new release (or
    a changed shell file) reaches phones on their next visit.
    """
    source = (_static() / WORKER_SOURCE).read_text(encoding="utf-8")
    config = {"version": _version(), "shell": shell_urls(_static(), url_for),
              "offline": url_for("pwa.offline_page"),
              "store": url_for("static", filename="js/outbox-store.js"),
              "static": url_for("static", filename=""), "fingerprint": FINGERPRINT_LENGTH}
    body = source.replace("self.FIELDAPP_WORKER = null;",
                          f"self.FIELDAPP_WORKER = {json.dumps(config)};", 1)
    return body, 200, {"Content-Type": "text/javascript; charset=utf-8",
                       "Cache-Control": "no-cache", "Service-Worker-Allowed": "/"}


@bp.get("/offline")
def offline_page():
    """Shown for any page the phone does not hold. The shell cache is shared by every user of
    the phone, so the page is rendered without the session: no name, no token, no case."""
    return render_template("pwa/offline.html")


@bp.get("/outbox")
@login_required
def outbox():
    """What this phone holds: an empty shell that the page's script fills from IndexedDB."""
    return render("pwa/outbox.html", title="Saved on this phone")
