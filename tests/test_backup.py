"""Backup and restore (issue 8, reliability 3).

`fieldapp backup OUT` copies the SQLite database with the online backup API while gunicorn serves
and phones write; `fieldapp restore` puts the copy into a fresh instance, whose audit chain then
verifies and whose tables hold at least everything acknowledged before the backup began (and no
more than the source held when it ended). The restore refuses, and leaves the target untouched,
whenever it would lose records or install something that is not a whole fieldapp database at this
release. PostgreSQL is backed up with pg_dump, as docs/deploy.md says; that recipe is run too.
"""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from contextlib import closing

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from fieldapp.backup import table_counts
from live import (Phone, Server, Write, init_instance, open_episodes, run_cli, server_environment,
                  sqlite_integrity, stored_counts)

WRITERS = 3


def _counts(path) -> dict[str, int]:
    with closing(sqlite3.connect(path, timeout=30)) as conn:
        return table_counts(conn)


def _keep_writing(phone: Phone, episodes: list[int], stop: threading.Event,
                  acknowledged: list[tuple[float, Write]], seed: int) -> None:
    """Post contacts and steps until told to stop; note when each was acknowledged."""
    rng = random.Random(seed)
    while not stop.is_set():
        write = Write(rng.choice(("step_entry", "search_contact")), rng.choice(episodes),
                      str(uuid.uuid4()), "Backup neighbour")
        status, _headers, _body = phone.post_form(
            write.form_path, write.form_fields(phone.get_page(write.form_path)))
        if status == 303:
            acknowledged.append((time.monotonic(), write))
    phone.close()


def _instance(tmp_path, name: str, **settings):
    folder = tmp_path / name
    folder.mkdir()
    url = f"sqlite:///{folder / 'fieldapp.sqlite3'}"
    return url, folder / "fieldapp.sqlite3", server_environment(folder, url, **settings)


def test_an_online_backup_taken_under_writes_restores_into_a_fresh_instance(tmp_path):
    source_url, source, env = _instance(tmp_path, "source")
    passwords = init_instance(env)
    episodes = [e for e, _child, _worker in open_episodes(source_url)]
    out = tmp_path / "backups" / "fieldapp-backup.sqlite3"
    out.parent.mkdir()
    server = Server(env)
    server.start()
    stop, acknowledged = threading.Event(), []
    writers = []
    try:
        for n in range(WRITERS):
            phone = Phone(server.address)
            phone.log_in("supervisor", passwords["supervisor"])
            writers.append(threading.Thread(target=_keep_writing,
                                            args=(phone, episodes, stop, acknowledged, n)))
            writers[-1].start()
        time.sleep(1.5)
        began, before = time.monotonic(), _counts(source)
        taken = run_cli(env, "backup", str(out))
        ended, after = time.monotonic(), _counts(source)
        time.sleep(0.5)
    finally:
        stop.set()
        for writer in writers:
            writer.join(timeout=60)
        server.stop()
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert "intact" in taken.stdout and str(out) in taken.stdout
    earlier = [w for at, w in acknowledged if at < began]
    assert earlier, "nothing was written before the backup"
    assert any(began <= at <= ended for at, _w in acknowledged), \
        "no write was acknowledged while the backup ran: it was not taken under load"
    assert not list(out.parent.glob(".*partial")), "a partial file was left behind"

    # A fresh instance: its own folder and database, the same audit key (kept apart from backups).
    fresh_url, fresh, fresh_env = _instance(tmp_path, "fresh",
                                            FIELDAPP_AUDIT_KEY=env["FIELDAPP_AUDIT_KEY"])
    restored = run_cli(fresh_env, "restore", str(out))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    audit = run_cli(fresh_env, "verify-audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert sqlite_integrity(fresh_url) == "ok"
    counts = _counts(fresh)
    assert counts.keys() == before.keys()
    outside = {t: (before[t], counts[t], after[t]) for t in counts
               if not before[t] <= counts[t] <= after[t]}
    assert not outside, f"restored counts outside (before, restored, after): {outside}"
    assert set(stored_counts(fresh_url, earlier).values()) == {1}
    assert len(stored_counts(fresh_url, earlier)) == len(earlier)

    # The restored instance serves: the same users log in and see their work.
    server = Server(fresh_env)
    server.start()
    try:
        phone = Phone(server.address)
        phone.log_in("caseworker", passwords["caseworker"])
        assert b"My work" in phone.get_page("/work")
    finally:
        server.stop()


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_restore_refuses_anything_that_would_lose_or_damage_records(tmp_path):
    url, target, env = _instance(tmp_path, "live")
    passwords = init_instance(env)
    good = tmp_path / "good.sqlite3"
    assert run_cli(env, "backup", str(good)).returncode == 0
    again = run_cli(env, "backup", str(good))
    assert again.returncode == 1 and "already exists" in again.stderr
    nowhere = run_cli(env, "backup", str(tmp_path / "missing-folder" / "b.sqlite3"))
    assert nowhere.returncode == 1 and "no folder" in nowhere.stderr

    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("not a database")
    foreign = tmp_path / "foreign.sqlite3"
    with closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE t (x)")
    older = tmp_path / "older.sqlite3"
    shutil.copyfile(good, older)
    with closing(sqlite3.connect(older)) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    damaged = tmp_path / "damaged.sqlite3"
    data = bytearray(good.read_bytes())
    data[8192:16384] = os.urandom(8192)  # pages in the middle: the header still looks fine
    damaged.write_bytes(bytes(data))

    unchanged = _digest(target)
    refusals = {
        good: "already holds records",  # the target has data and no --force was given
        not_sqlite: "not an SQLite database",
        foreign: "not a fieldapp database",
        older: "is at migration 0001",
        damaged: "",  # "is damaged" or "cannot be read", depending on which pages were hit
    }
    for backup_file, message in refusals.items():
        refused = run_cli(env, "restore", str(backup_file))
        assert refused.returncode == 1, (backup_file, refused.stdout)
        assert message in refused.stderr, refused.stderr
        assert _digest(target) == unchanged

    server = Server(env)
    server.start()
    try:
        phone = Phone(server.address)
        phone.log_in("caseworker", passwords["caseworker"])  # a worker now holds the file open
        busy = run_cli(env, "restore", "--force", str(good))
    finally:
        server.stop()
    assert busy.returncode == 1 and "is in use" in busy.stderr, busy.stderr

    forced = run_cli(env, "restore", "--force", str(good))
    assert forced.returncode == 0, forced.stderr
    assert not list(target.parent.glob("fieldapp.sqlite3-*")), "stale -wal or -shm left behind"
    assert run_cli(env, "verify-audit").returncode == 0
    assert sqlite_integrity(url) == "ok"


@pytest.fixture
def postgres_pair(postgres_admin):
    """Two new PostgreSQL databases: a source and a restore target, dropped afterwards."""
    names = [f"fieldapp_backup_{os.getpid()}_{n}" for n in range(2)]
    with postgres_admin.connect() as conn:
        for name in names:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {name}"))
    yield [postgres_admin.url.set(database=name).render_as_string(hide_password=False)
           for name in names]
    with postgres_admin.connect() as conn:
        for name in names:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.mark.skipif(not shutil.which("pg_dump"), reason="pg_dump is not installed")
def test_postgresql_is_backed_up_with_pg_dump_as_documented(tmp_path, postgres_pair):
    source_url, target_url = postgres_pair
    instance = tmp_path / "pg"
    instance.mkdir()
    env = server_environment(instance, source_url)
    init_instance(env)
    refused = run_cli(env, "backup", str(tmp_path / "x.sqlite3"))
    assert refused.returncode == 1 and "pg_dump" in refused.stderr
    assert run_cli(env, "restore", str(tmp_path / "x.sqlite3")).returncode == 1

    # docs/deploy.md, "Backup and restore": custom format, restored without owners.
    dump = tmp_path / "fieldapp.dump"
    subprocess.run(["pg_dump", "-Fc", "--no-owner", "-f", str(dump), _libpq(source_url)],
                   check=True, timeout=120)
    subprocess.run(["pg_restore", "--no-owner", "-d", _libpq(target_url), str(dump)],
                   check=True, timeout=120)
    restored_env = dict(env, FIELDAPP_DATABASE_URL=target_url)
    audit = run_cli(restored_env, "verify-audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert audit.stdout == run_cli(env, "verify-audit").stdout  # the same number of events
