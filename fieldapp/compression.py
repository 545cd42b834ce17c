"""gzip for the app's own HTML and JSON, so that a phone gets them compressed whatever proxy (or
none) stands in front of gunicorn. Static files come compressed already (fieldapp/assets.py).

BREACH (guessing a secret in a compressed page from its size, by making the victim's browser
send many requests that reflect the attacker's guesses next to the secret) is weak here:
- The session cookie is SameSite=Lax, so another site's scripts, images and forms cannot send
  requests that carry it; only top-level navigations can, one visible page at a time.
- The only secret in a page is the CSRF token. Flask-WTF signs it with a timestamp, so its
  signature changes every second and cannot be guessed byte by byte across many requests; its
  first part alone is no use without a signature made with the app's secret key.
- Pages reflect little of the request: no search term is echoed next to the token.
"""
from __future__ import annotations

import gzip

from flask import Request
from werkzeug.wrappers import Response

# The app's own answers; the service worker's script and the manifest are made per request too.
COMPRESSED_TYPES = frozenset({"text/html", "application/json", "text/javascript",
                              "application/manifest+json"})
MIN_BYTES = 1024  # below this the gzip header and the CPU cost outweigh the saving
LEVEL = 6         # zlib's default: most of level 9's saving at a third of its time


def accepts_gzip(request: Request) -> bool:
    return request.accept_encodings["gzip"] > 0


def compress_response(request: Request, response: Response) -> Response:
    """Compress ``response`` in place when it is one of COMPRESSED_TYPES, above MIN_BYTES, and
    the client takes gzip. Streamed bodies (files, CSV exports) and static files (compressed
    already) are left alone."""
    if (response.mimetype not in COMPRESSED_TYPES or response.direct_passthrough
            or response.is_streamed or "Content-Encoding" in response.headers
            or response.status_code in (204, 304) or response.status_code < 200):
        return response
    response.vary.add("Accept-Encoding")  # the body depends on it even when it stays plain
    if not accepts_gzip(request):
        return response
    data = response.get_data()
    if len(data) < MIN_BYTES:
        return response
    response.set_data(gzip.compress(data, compresslevel=LEVEL))
    response.headers["Content-Encoding"] = "gzip"
    return response
