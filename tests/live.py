"""A real fieldapp server for tests that need one: `fieldapp init`, then gunicorn, as an operator
starts it. Used by the browser suite and by the crash tests, which kill it mid-write.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookiejar import CookieJar
from importlib.metadata import version
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
START_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_demo_logins(text: str) -> dict[str, str]:
    """Username to password, from `fieldapp demo`'s lines: role, username, password, (name)."""
    passwords = {}
    for line in text.splitlines():
        words = line.split()
        if line.startswith(" ") and len(words) >= 4 and words[3].startswith("("):
            passwords[words[1]] = words[2]
    return passwords


def gunicorn_command(address: str, workers: int = 2) -> list[str]:
    command = [str(VENV_BIN / "gunicorn"), "-w", str(workers), "-b", address]
    # Since 25.1 gunicorn opens a control socket at one fixed path per user, which two test runs
    # (or a test run and `make run`) would fight over; older versions have no such socket or flag.
    release = tuple(int(part) for part in version("gunicorn").split(".")[:2] if part.isdigit())
    if release >= (25, 1):
        command.append("--no-control-socket")
    return command + ["fieldapp:create_app()"]


def server_environment(instance_path: Path, database_url: str, **settings: str) -> dict[str, str]:
    # Settings from the developer's shell (a debug flag, another database) must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDAPP_")}
    env.update(FIELDAPP_INSTANCE_PATH=str(instance_path), FIELDAPP_DATABASE_URL=database_url,
               FIELDAPP_SECRET_KEY=secrets.token_hex(32), FIELDAPP_AUDIT_KEY=secrets.token_hex(32))
    env.update(settings)
    return env


def init_instance(env: dict[str, str]) -> dict[str, str]:
    """Migrate and load the demo data; the demo users' passwords."""
    done = subprocess.run([str(VENV_BIN / "fieldapp"), "init"], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"`fieldapp init` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return parse_demo_logins((Path(env["FIELDAPP_INSTANCE_PATH"]) / "demo-logins.txt").read_text())


@dataclass
class Server:
    """One gunicorn master and its workers, in a process group of their own so that a crash test
    can kill them all at once, as a power cut would."""
    env: dict[str, str]
    workers: int = 2
    address: str = field(default_factory=lambda: f"127.0.0.1:{free_port()}")
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> None:
        log = open(Path(self.env["FIELDAPP_INSTANCE_PATH"]) / "gunicorn.log", "ab")
        with log:
            self.process = subprocess.Popen(gunicorn_command(self.address, self.workers),
                                            env=self.env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
                                            stderr=log, start_new_session=True)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with status {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/login", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"gunicorn did not answer within {START_SECONDS} s")

    def kill(self) -> None:
        """SIGKILL the master and every worker: no shutdown code runs."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None


class Browserless:
    """A logged-in HTTP client with cookies, for talking to the live server without a browser."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: dict | None = None, timeout: float = 60) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base_url + path, data=body, method=method,
                                         headers=headers or {})
        try:
            with self.opener.open(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def log_in(self, username: str, password: str) -> None:
        _status, page = self.request("GET", "/login")
        token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page).group(1).decode()
        form = urllib.parse.urlencode({"csrf_token": token, "username": username,
                                       "password": password}).encode()
        status, _ = self.request("POST", "/login", body=form,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            raise RuntimeError(f"login as {username} answered {status}")

    def get_json(self, path: str) -> dict:
        status, body = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}")
        return json.loads(body)

    def post_json(self, path: str, payload: dict, *, timeout: float = 60) -> tuple[int, dict]:
        token = self.get_json("/api/v1/session")["csrf_token"]
        status, body = self.request("POST", path, body=json.dumps(payload).encode(), timeout=timeout,
                                    headers={"Content-Type": "application/json", "X-CSRFToken": token})
        return status, json.loads(body)


# --- Many phones at once: the concurrency, crash-loop and backup tests ---------------------------

CSRF_FIELD = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')
# What a server error looks like from the outside: none of it may ever reach a user.
SERVER_ERROR_TEXT = (b"database is locked", b"OperationalError", b"Internal Server Error",
                     b"Traceback")


class Phone:
    """One browser session on one http.client connection, reused while the server keeps it open
    (gunicorn's sync workers close it after each answer). No redirect is followed, so every answer
    is seen as the server gave it. Not thread-safe: one per thread."""

    def __init__(self, address: str, timeout: float = 60):
        self.address = address
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.connection: http.client.HTTPConnection | None = None
        self.csrf_token = ""

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict[str, str], bytes]:
        """One request. A connection refused or dropped (a killed server) raises ConnectionError."""
        if self.connection is None:
            host, port = self.address.rsplit(":", 1)
            self.connection = http.client.HTTPConnection(host, int(port), timeout=self.timeout)
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            self.connection.request(method, path, body=body, headers=sent)
            response = self.connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as lost:
            self.close()
            raise ConnectionError(f"{method} {path}: {lost!r}") from lost
        for cookie in response.headers.get_all("Set-Cookie") or ():
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if value and "max-age=0" not in cookie.lower():
                self.cookies[name.strip()] = value
            else:
                self.cookies.pop(name.strip(), None)
        if response.will_close:
            self.close()
        return response.status, dict(response.headers.items()), answer

    def twin(self) -> "Phone":
        """The same session on a second connection: a retry sent while the first try is still
        in flight, as a phone does after a timeout."""
        other = Phone(self.address, self.timeout)
        other.cookies, other.csrf_token = dict(self.cookies), self.csrf_token
        return other

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def get_page(self, path: str) -> bytes:
        """GET a page and keep its CSRF token, as the browser's form would carry it."""
        status, _headers, page = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}")
        found = CSRF_FIELD.search(page)
        if found:
            self.csrf_token = found.group(1).decode()
        return page

    def post_form(self, path: str, fields: dict) -> tuple[int, dict[str, str], bytes]:
        body = urllib.parse.urlencode({"csrf_token": self.csrf_token, **fields}, doseq=True)
        return self.request("POST", path, body=body.encode(),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})

    def log_in(self, username: str, password: str) -> None:
        self.get_page("/login")
        status, _headers, _body = self.post_form("/login", {"username": username,
                                                            "password": password})
        if status not in (302, 303):
            raise RuntimeError(f"login as {username} answered {status}")

    def sync(self, ops: list[dict]) -> tuple[int, dict[str, str], bytes]:
        """POST a batch to the sync API, as the phone's outbox does."""
        status, _headers, body = self.request("GET", "/api/v1/session")
        if status != 200:
            raise RuntimeError(f"GET /api/v1/session answered {status}")
        token = json.loads(body)["csrf_token"]
        batch = {"device_id": str(uuid.uuid4()), "held": len(ops), "ops": ops,
                 "device_time": datetime.now(UTC).isoformat()}
        return self.request("POST", "/api/v1/sync", body=json.dumps(batch).encode(),
                            headers={"Content-Type": "application/json", "X-CSRFToken": token})


@dataclass(frozen=True)
class Write:
    """One record a user makes: a step entry or a contact, on one episode, with its own UUID."""
    kind: str  # "step_entry" or "search_contact", as client_ops names them
    episode_id: int
    uuid: str
    label: str

    @property
    def form_path(self) -> str:
        return (f"/episodes/{self.episode_id}/steps/{STEP_FOR_LOAD}" if self.kind == "step_entry"
                else f"/episodes/{self.episode_id}/contacts")

    def form_fields(self, page: bytes) -> dict:
        """The fields a user fills in; the times are the form's own defaults (now, agency time)."""
        when = re.search(rb'name="(?:done_at|contacted_at)"[^>]*value="([^"]+)"', page)
        when = when.group(1).decode() if when else ""
        common = {"client_uuid": self.uuid, "recorded_at": datetime.now(UTC).isoformat()}
        if self.kind == "step_entry":
            return {**common, "outcome": "done", "done_at": when, "ev_name": self.label,
                    "ev_method": "Phone", "ev_result": "Left a message"}
        return {**common, "purpose": "search", "person": self.label, "relationship": "other",
                "method": "phone", "contacted_at": when, "reached": "attempt", "learned": ""}

    def sync_op(self) -> dict:
        now = datetime.now(UTC)
        op = {"uuid": self.uuid, "kind": self.kind, "episode_id": self.episode_id,
              "recorded_at": now.isoformat()}
        done = now.isoformat()  # not earlier: the episode may have opened a moment ago
        if self.kind == "step_entry":
            return {**op, "step_key": STEP_FOR_LOAD, "fields": {
                "outcome": "done", "done_at": done, "evidence": {
                    "name": self.label, "method": "Phone", "result": "Left a message"}}}
        return {**op, "fields": {"purpose": "search", "person": self.label, "relationship": "other",
                                 "method": "phone", "contacted_at": done, "reached": "attempt",
                                 "learned": ""}}


# A step that takes any number of entries ("one entry per parent"), so that load never runs out.
STEP_FOR_LOAD = "notify_parents"


def server_error(status: int, body: bytes) -> str | None:
    """Why this answer is a server failure, or None."""
    if status >= 500:
        return f"status {status}"
    leaked = next((text for text in SERVER_ERROR_TEXT if text in body), None)
    return f"{leaked.decode()!r} in the answer" if leaked else None


def open_episodes(database_url: str) -> list[tuple[int, int, str]]:
    """(episode id, child id, caseworker's username) of every episode whose child is still
    missing, read directly: this is set-up, not what is under test."""
    from sqlalchemy import create_engine, select
    from fieldapp.models import Child, Episode, User
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(
                select(Episode.id, Episode.child_id, User.username)
                .join(Child, Child.id == Episode.child_id)
                .join(User, User.id == Child.caseworker_id)
                .where(Episode.ended_at.is_(None), Episode.located_at.is_(None))
                .order_by(Episode.id)).all()]
    finally:
        engine.dispose()


def stored_counts(database_url: str, writes: list[Write]) -> dict[str, int]:
    """How many rows each write's UUID has, in its own table."""
    from sqlalchemy import create_engine, func, select
    from fieldapp.models import SearchContact, StepEntry
    tables = {"step_entry": StepEntry, "search_contact": SearchContact}
    counts: dict[str, int] = {}
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            for kind, model in tables.items():
                uuids = [w.uuid for w in writes if w.kind == kind]
                for start in range(0, len(uuids), 500):
                    counts.update(conn.execute(
                        select(model.client_uuid, func.count())
                        .where(model.client_uuid.in_(uuids[start:start + 500]))
                        .group_by(model.client_uuid)).all())
    finally:
        engine.dispose()
    return counts


def sqlite_integrity(database_url: str) -> str:
    """PRAGMA integrity_check of an SQLite database ("ok"), or "" for another database."""
    if not database_url.startswith("sqlite"):
        return ""
    import sqlite3
    with closing(sqlite3.connect(database_url.split("///", 1)[1], timeout=30)) as conn:
        return "\n".join(row[0] for row in conn.execute("PRAGMA integrity_check"))


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`fieldapp ARGS` against the instance in ``env``, as an operator runs it."""
    return subprocess.run([str(VENV_BIN / "fieldapp"), *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=timeout)


def break_glass(phone: Phone, child_id: int) -> None:
    """An on-call worker's grant for one child, through its form."""
    phone.get_page(f"/children/{child_id}/break-glass")
    status, _headers, body = phone.post_form(f"/children/{child_id}/break-glass",
                                             {"reason": "After-hours call from the police"})
    if status != 303:
        raise RuntimeError(f"break-glass for child {child_id} answered {status}: {body[:300]!r}")


def form_errors(page: bytes) -> list[str]:
    """The messages a form shows next to its fields, for a failure's report."""
    return [m.decode(errors="replace") for m in re.findall(rb'class="error"[^>]*>([^<]*)<', page)]


def children_with_status(database_url: str, status: str) -> list[tuple[int, str]]:
    """(child id, caseworker's username) of the children in ``status``, read directly (set-up)."""
    from sqlalchemy import create_engine, select
    from fieldapp.models import Child, User
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(
                select(Child.id, User.username).join(User, User.id == Child.caseworker_id)
                .where(Child.status == status).order_by(Child.id)).all()]
    finally:
        engine.dispose()


def report_missing(phone: Phone, child_id: int) -> int:
    """Open a missing episode through the wizard's first form; the new episode's id."""
    path = f"/children/{child_id}/missing"
    page = phone.get_page(path)
    discovered = re.search(rb'name="discovered_at"[^>]*value="([^"]+)"', page).group(1).decode()
    status, headers, body = phone.post_form(path, {
        "client_uuid": str(uuid.uuid4()), "status": "whereabouts_unknown",
        "discovered_at": discovered, "discovered_by_role": "placement_provider",
        "discovered_by_name": "House parent", "how_missing": "ran_away",
        "note": "Not at bed check"})
    found = re.search(r"/episodes/(\d+)/", headers.get("Location", ""))
    if status != 303 or not found:
        raise RuntimeError(f"reporting child {child_id} missing answered {status}: "
                           f"{form_errors(body) or body[:300]!r}")
    return int(found.group(1))


def logged_errors(env: dict[str, str], limit: int = 5) -> list[str]:
    """The last line of each traceback in gunicorn.log, for a failure's report."""
    log = Path(env["FIELDAPP_INSTANCE_PATH"]) / "gunicorn.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    ends = [lines[n + 1] for n, line in enumerate(lines[:-1])
            if line.startswith("  ") and not lines[n + 1].startswith((" ", "Traceback", "["))]
    return ends[-limit:]
