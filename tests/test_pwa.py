"""The installable app's routes (DESIGN §8): manifest, service worker, offline page, outbox page."""
import json
import re

import pytest

from fieldapp import create_app
from fieldapp.pwa.shell import SHELL_STATIC, shell_version


def _worker_config(body: str) -> dict:
    found = re.search(r"^self\.FIELDAPP_WORKER = (\{.*\});$", body, re.M)
    assert found, "the worker's configuration line was not filled in"
    return json.loads(found.group(1))


def test_manifest_describes_an_installable_app(client):
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    manifest = response.get_json(force=True)
    assert manifest["name"] == "fieldapp"
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "/" and manifest["scope"] == "/"
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["theme_color"])
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert "any" in sizes  # the SVG
    for icon in manifest["icons"]:  # every listed icon is really served
        assert client.get(icon["src"]).status_code == 200, icon["src"]


def test_service_worker_is_served_from_the_root_uncached(client, world, login):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    login(world.cw_a)  # the same for a logged-in user: the script holds nobody's data
    assert client.get("/sw.js").headers["Cache-Control"] == "no-cache"
    assert client.get("/outbox").headers["Cache-Control"] == "no-store"
    body = response.get_data(as_text=True)
    config = _worker_config(body)
    assert re.fullmatch(r"[0-9a-f]{16}", config["version"])
    assert config["offline"] == "/offline"
    # The shell holds the offline page, the styles, htmx and the scripts (by their fingerprinted
    # names, as the pages link them), and every one is served.
    assert "/offline" in config["shell"]
    unfingerprinted = {re.sub(r"\.[0-9a-f]{8}(\.\w+)$", r"\1", url) for url in config["shell"]}
    for url in ("/static/css/app.css", "/static/vendor/htmx.min.js", "/static/js/offline.js",
                "/static/js/outbox-store.js", "/static/js/outbox-page.js"):
        assert url in unfingerprinted and url not in config["shell"]
    for url in config["shell"]:
        assert client.get(url).status_code == 200, url
    # Only the shell is precached: no page about a user or a case.
    assert not any(url.startswith(("/episodes", "/children", "/api")) for url in config["shell"])


def test_worker_version_changes_with_the_release(app_config):
    versions = {}
    for release in ("2026.03.1", "2026.03.2"):
        app = create_app({**app_config, "RELEASE": release})
        body = app.test_client().get("/sw.js").get_data(as_text=True)
        versions[release] = _worker_config(body)["version"]
        app.extensions["fieldapp.engine"].dispose()
    assert versions["2026.03.1"] != versions["2026.03.2"]


def test_worker_version_changes_with_a_shell_file(tmp_path, app):
    static = tmp_path / "static"
    templates = tmp_path / "templates"
    (templates / "pwa").mkdir(parents=True)
    (templates / "pwa" / "offline.html").write_text("offline")
    for name in SHELL_STATIC[:3]:
        (static / name).parent.mkdir(parents=True, exist_ok=True)
        (static / name).write_text("one")
    before = shell_version(static, templates, "r1")
    assert shell_version(static, templates, "r1") == before  # stable when nothing changed
    (static / SHELL_STATIC[0]).write_text("two")
    assert shell_version(static, templates, "r1") != before


def test_offline_page_has_nothing_about_the_user(client, login, world):
    login(world.cw_a)
    assert client.get("/").status_code in (200, 302)  # a live session exists
    response = client.get("/offline")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "You are offline" in html
    # Nothing of the logged-in user or of any child, and no session token, even when logged in.
    for personal in (world.cw_a.display_name, world.cw_a.username, "Alice", "Avery",
                     "csrf", "Log out"):
        assert personal not in html, personal
    assert 'name="fieldapp-user" content=""' in html


def test_outbox_page_needs_a_login_and_is_an_empty_shell(client, login, world):
    assert client.get("/outbox").status_code == 302
    login(world.cw_a)
    response = client.get("/outbox")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Saved on this phone" in html
    assert 'data-outbox-list="quarantined"' in html and 'data-outbox-list="queued"' in html
    assert f'name="fieldapp-user" content="{world.cw_a.id}"' in html
    # Never a download of unsent records.
    assert "download" not in html.lower()


@pytest.mark.parametrize("path", ["/manifest.webmanifest", "/sw.js", "/offline"])
def test_shell_routes_send_the_security_headers(client, path):
    response = client.get(path)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_queueable_forms_carry_their_operation(client, login, world, make_episode):
    episode = make_episode(world.child_a, world.cw_a)
    login(world.cw_a)
    html = client.get(f"/episodes/{episode.id}/steps/report_law_enforcement").get_data(as_text=True)
    assert 'data-op-kind="step_entry"' in html
    assert f'data-episode-id="{episode.id}"' in html
    assert 'data-step-key="report_law_enforcement"' in html
    assert 'data-policy-version="missouri-2023"' in html
    contacts = client.get(f"/episodes/{episode.id}/contacts").get_data(as_text=True)
    assert 'data-op-kind="search_contact"' in contacts
    overview = client.get(f"/episodes/{episode.id}").get_data(as_text=True)
    assert 'li class="step-row state-' in overview and 'data-step-key="report_law_enforcement"' in overview
