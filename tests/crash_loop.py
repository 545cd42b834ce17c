"""The crash loop (issue 8, reliability 2), shared by tests/test_crash_loop.py (20 kills) and
bench/crash_bench.py (100): while phones write through the forms and the sync API, the whole
gunicorn process group is SIGKILLed at seeded random moments and restarted, again and again.

The phones behave as the real outbox does: a write whose answer never came is sent again, with the
same UUID and the same content, until the server acknowledges it (a 303 from a form, an "applied"
or "duplicate" from sync). The report says what was acknowledged, lost, stored twice, and what
the integrity checks and the audit chain said.
"""
from __future__ import annotations

import random
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from live import (Phone, Server, Write, init_instance, open_episodes, run_cli, server_error,
                  server_environment, sqlite_integrity, stored_counts)

ITERATIONS = 20
WRITERS = 4
USERS = ("caseworker", "caseworker2", "supervisor", "supervisor2")
SYNC_BATCH = 3  # every fourth unit of work is a small outbox batch instead of a form post
RUNNING_SECONDS = (0.3, 1.2)  # how long the server writes before each kill


@dataclass
class CrashLoopReport:
    kills: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    acknowledged: list[Write] = field(default_factory=list)
    unacknowledged: list[Write] = field(default_factory=list)
    resent: int = 0  # writes sent more than once because a kill cut off their answer
    problems: list[str] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)  # SQLite's answer after each kill
    stored: dict[str, int] = field(default_factory=dict)
    audit: str = ""
    audit_ok: bool = False

    @property
    def lost(self) -> list[Write]:
        return [w for w in self.acknowledged if self.stored.get(w.uuid, 0) == 0]

    @property
    def doubled(self) -> list[Write]:
        return [w for w in self.acknowledged + self.unacknowledged
                if self.stored.get(w.uuid, 0) > 1]

    @property
    def restart_median(self) -> float:
        return statistics.median(self.restart_seconds) if self.restart_seconds else 0.0


def _send(phone: Phone, writes: list[Write], fields: dict, batch: list[dict] | None
          ) -> tuple[bool | None, str | None]:
    """One try at a unit of work: True when acknowledged, False when refused, None when the
    answer was lost (the server died or was down); and a server error, if one was answered."""
    try:
        if batch is not None:
            status, _headers, body = phone.sync(batch)
            settled = body.count(b'"applied"') + body.count(b'"duplicate"')
            acknowledged = status == 200 and settled == len(batch)
        else:
            status, _headers, body = phone.post_form(writes[0].form_path, fields)
            acknowledged = status == 303
    except (ConnectionError, RuntimeError):  # RuntimeError: a page or session GET that failed
        return None, None
    # A kill shows as a dropped connection, never as an answer: a 5xx is a bug. Resend anyway.
    failure = server_error(status, body)
    return (None, f"{status}: {failure}") if failure else (acknowledged, None)


def _writer(phone: Phone, rng: random.Random, episodes: list[int], stop: threading.Event,
            report: CrashLoopReport, lock: threading.Lock) -> None:
    units = 0
    while not stop.is_set():
        units += 1
        count = SYNC_BATCH if units % 4 == 0 else 1
        writes = [Write(rng.choice(("step_entry", "search_contact")), rng.choice(episodes),
                        str(uuid.UUID(int=rng.getrandbits(128), version=4)), f"Crash {units}")
                  for _ in range(count)]
        # Built once and resent unchanged, as the outbox keeps them.
        batch = [w.sync_op() for w in writes] if count > 1 else None
        fields = None
        tries, outcome = 0, None
        while outcome is None and not stop.is_set():
            if batch is None and fields is None:
                try:
                    fields = writes[0].form_fields(phone.get_page(writes[0].form_path))
                except (ConnectionError, RuntimeError):
                    time.sleep(0.05)
                    continue
            tries += 1
            outcome, failure = _send(phone, writes, fields, batch)
            if failure:
                with lock:
                    report.problems.append(f"server error: {failure}")
            if outcome is None:
                time.sleep(0.05)
        with lock:
            report.resent += len(writes) * (tries > 1)
            (report.acknowledged if outcome else report.unacknowledged).extend(writes)
            if outcome is False:
                report.problems.append(f"refused: {[w.uuid for w in writes]}")
    phone.close()


def crash_loop(workdir: Path, database_url: str, iterations: int = ITERATIONS,
               seed: int = 8) -> CrashLoopReport:
    """Write, SIGKILL, restart, ``iterations`` times; then read what the database holds."""
    instance = workdir / "instance"
    instance.mkdir(parents=True)
    env = server_environment(instance, database_url)
    passwords = init_instance(env)
    episodes = open_episodes(database_url)
    rng = random.Random(seed)
    report = CrashLoopReport()
    server = Server(env)
    server.start()
    stop, lock = threading.Event(), threading.Lock()
    writers = []
    try:
        for n in range(WRITERS):
            user = USERS[n % len(USERS)]
            phone = Phone(server.address, timeout=30)
            phone.log_in(user, passwords[user])
            mine = [e for e, _child, worker in episodes
                    if worker == user or not user.startswith("caseworker")]
            writers.append(threading.Thread(target=_writer, args=(
                phone, random.Random(rng.random()), mine, stop, report, lock)))
        for writer in writers:
            writer.start()
        for _ in range(iterations):
            time.sleep(rng.uniform(*RUNNING_SECONDS))
            server.kill()
            report.kills += 1
            if database_url.startswith("sqlite"):
                report.integrity.append(sqlite_integrity(database_url))
            began = time.monotonic()
            server.start()  # the phones' cookies still hold: sessions survive a restart
            report.restart_seconds.append(time.monotonic() - began)
        time.sleep(RUNNING_SECONDS[1])  # the last resends land
    finally:
        stop.set()
        for writer in writers:
            writer.join(timeout=60)
        server.stop()
    report.stored = stored_counts(database_url, report.acknowledged + report.unacknowledged)
    audit = run_cli(env, "verify-audit")
    report.audit, report.audit_ok = (audit.stdout + audit.stderr).strip(), audit.returncode == 0
    if database_url.startswith("sqlite"):
        report.integrity.append(sqlite_integrity(database_url))
    return report
