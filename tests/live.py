"""A real fieldapp server for tests that need one: `fieldapp init`, then gunicorn, as an operator
starts it. Used by the browser suite and by the crash tests, which kill it mid-write.
"""
from __future__ import annotations

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
import urllib.request
from dataclasses import dataclass, field
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
