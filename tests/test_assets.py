"""Static files under fingerprinted names, compressed and cached for a year; compressed HTML; and
the page weight a phone downloads for a wizard step (issue 8: at most 40 KB first load, 4 KB a
step swap). Sizes, not timings: they do not depend on the machine."""
from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from fieldapp import pdf
from fieldapp.assets import IMMUTABLE, Assets

FIRST_LOAD_LIMIT = 40 * 1024
STEP_SWAP_LIMIT = 4 * 1024
FINGERPRINTED_URL = re.compile(r"^/static/(?P<name>.+)\.(?P<digest>[0-9a-f]{8})(?P<suffix>\.\w+)$")
GZIP = {"Accept-Encoding": "gzip, deflate, br"}


def _referenced(html: str) -> list[str]:
    """The stylesheets and scripts a page makes the browser fetch."""
    return (re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
            + re.findall(r'<script src="([^"]+)"', html))


def _on_disk(app, url: str) -> bytes:
    match = FINGERPRINTED_URL.match(url)
    assert match, f"{url} is not fingerprinted"
    return (Path(app.static_folder) / (match["name"] + match["suffix"])).read_bytes()


def _body(response) -> bytes:
    """The bytes the client gets after undoing Content-Encoding."""
    if response.headers.get("Content-Encoding") == "gzip":
        return gzip.decompress(response.data)
    return response.data


def test_pages_link_every_static_file_by_its_fingerprint(app, client):
    html = client.get("/login").text
    urls = _referenced(html)
    assert any("css/app." in url for url in urls) and any("htmx.min." in url for url in urls)
    for url in urls:
        assert FINGERPRINTED_URL.match(url), url
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.data == _on_disk(app, url)  # the content the name promises


def test_a_fingerprinted_file_is_compressed_and_kept_for_a_year(app, client, world, login):
    login(world.cw_a)  # a logged-in user gets the same cacheable file, tied to no session
    html = client.get("/", follow_redirects=True).text
    url = next(url for url in _referenced(html) if "js/app." in url)
    response = client.get(url, headers=GZIP)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == IMMUTABLE == "public, max-age=31536000, immutable"
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Vary"] == "Accept-Encoding"  # not Cookie: any cache may keep it
    assert "Set-Cookie" not in response.headers
    assert response.mimetype == "text/javascript"
    assert len(response.data) < len(_on_disk(app, url)) / 1.5
    assert gzip.decompress(response.data) == _on_disk(app, url)
    # A client that does not take gzip gets the plain bytes, under another tag.
    plain = client.get(url)
    assert "Content-Encoding" not in plain.headers and plain.data == _on_disk(app, url)
    assert plain.headers["ETag"] != response.headers["ETag"]
    again = client.get(url, headers={**GZIP, "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_content_types_of_static_files(client):
    html = client.get("/login").text
    css = next(url for url in _referenced(html) if url.endswith(".css"))
    assert client.get(css).mimetype == "text/css"
    icons = client.get("/manifest.webmanifest").get_json(force=True)["icons"]
    for icon in icons:
        assert FINGERPRINTED_URL.match(icon["src"]), icon["src"]
        assert client.get(icon["src"]).mimetype == icon["type"]


def test_the_plain_name_still_answers_but_is_revalidated(app, client):
    response = client.get("/static/css/app.css", headers=GZIP)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    assert _body(response) == (Path(app.static_folder) / "css/app.css").read_bytes()
    again = client.get("/static/css/app.css", headers={**GZIP, "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("path", [
    "/static/js/app.00000000.js",        # a fingerprint that is not the file's
    "/static/js/app.0000000.js",         # not a fingerprint at all
    "/static/js/nothing.js",
    "/static/js/sw.js",                  # the worker's source is served only at /sw.js
    "/static/../pyproject.toml",
    "/static/%2e%2e/pyproject.toml",
])
def test_unknown_static_names_are_not_found(client, path):
    assert client.get(path).status_code == 404


def test_a_changed_file_gets_a_new_name_and_the_old_one_is_gone(tmp_path):
    (tmp_path / "css").mkdir()
    sheet = tmp_path / "css" / "site.css"
    sheet.write_text("body { color: black }")
    (tmp_path / ".hidden").write_text("editor state")
    assets = Assets(tmp_path, follow_edits=True)
    assets.RECHECK_SECONDS = 0  # look at the disk on every call, not once a second
    before = assets.url_name("css/site.css")
    assert re.fullmatch(r"css/site\.[0-9a-f]{8}\.css", before)
    assert assets.find(".hidden") == (None, False)
    sheet.write_text("body { color: navy }")
    after = assets.url_name("css/site.css")
    assert after != before
    assert assets.find(before) == (None, False)
    found, fingerprinted = assets.find(after)
    assert fingerprinted and found.data == b"body { color: navy }"


def test_the_service_worker_precaches_the_fingerprinted_names(app, client):
    body = client.get("/sw.js").get_data(as_text=True)
    config = json.loads(re.search(r"^self\.FIELDAPP_WORKER = (\{.*\});$", body, re.M).group(1))
    statics = [url for url in config["shell"] if url.startswith("/static/")]
    assert len(statics) >= 6
    for url in statics + [config["store"]]:
        assert FINGERPRINTED_URL.match(url), url
        response = client.get(url)
        assert response.status_code == 200 and response.headers["Cache-Control"] == IMMUTABLE
    # The page links the very files the worker keeps, so offline pages find them in the shell.
    assert set(_referenced(client.get("/login").text)) <= set(config["shell"])
    assert config["static"] == "/static/" and config["fingerprint"] == 8


def test_weasyprint_finds_the_stylesheets_under_their_fingerprinted_names(app, client, story_page):
    fetch = pdf.StaticFiles(app.static_folder, "/static/")
    url = next(url for url in _referenced(story_page) if "print." in url)
    sheet = fetch(pdf.BASE_URL + url.lstrip("/"))
    assert b"size: Letter" in sheet.read()
    wrong = re.sub(r"\.[0-9a-f]{8}\.css$", ".00000000.css", url)
    with pytest.raises(FileNotFoundError):
        fetch(pdf.BASE_URL + wrong.lstrip("/"))


@pytest.fixture
def story_page(client, world, login, make_episode):
    """The episode record page (it links the print stylesheet WeasyPrint uses)."""
    login(world.cw_a)
    episode = make_episode(world.child_a, world.cw_a)
    return client.get(f"/episodes/{episode.id}/record").text


def test_html_is_compressed_for_clients_that_take_gzip(client, world, login):
    login(world.cw_a)
    compressed = client.get("/", headers=GZIP, follow_redirects=True)
    assert compressed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in compressed.headers["Vary"]
    plain = client.get("/", follow_redirects=True)
    assert "Content-Encoding" not in plain.headers
    assert b"fieldapp" in gzip.decompress(compressed.data)
    assert len(compressed.data) < len(plain.data)


def _wire_bytes(client, url: str, headers: dict | None = None) -> int:
    response = client.get(url, headers={**GZIP, **(headers or {})})
    assert response.status_code == 200, url
    return len(response.data)  # the body as sent: compressed when Content-Encoding says so


def test_a_wizard_step_weighs_at_most_40_kb_and_a_swap_4_kb(client, world, login, make_episode):
    login(world.cw_a)
    episode = make_episode(world.child_a, world.cw_a)
    step = f"/episodes/{episode.id}/steps/report_law_enforcement"
    page = client.get(step, headers=GZIP)
    assert page.headers["Content-Encoding"] == "gzip"
    html = gzip.decompress(page.data).decode()
    assets = _referenced(html)
    # The stylesheet, htmx, the app's script, the offline store and the offline script.
    assert len(assets) == 5, assets
    first_load = len(page.data) + sum(_wire_bytes(client, url) for url in assets)
    assert first_load <= FIRST_LOAD_LIMIT, f"first load {first_load} bytes"
    swap = _wire_bytes(client, step, {"HX-Request": "true"})
    assert swap <= STEP_SWAP_LIMIT, f"step swap {swap} bytes"
    assert swap < len(page.data)  # the partial, not the page


def test_the_health_check_answers_without_a_session_or_the_database(client, world, login):
    login(world.cw_a)
    response = client.get("/healthz")
    assert response.status_code == 200 and response.text == "ok\n"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers and "Cookie" not in response.headers.get("Vary", "")
