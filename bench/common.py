"""What the benchmarks share: a throwaway app on a fresh SQLite file, and a throwaway PostgreSQL
database, each migrated by the same code that migrates production."""
from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from fieldapp import create_app, migrate
from fieldapp.models import Child, Placement
from fieldapp.status import record_initial_status

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def bench_app(url: str, clock, folder: Path, **config) -> Flask:
    """The app on the migrated database at ``url``, with fresh keys and the given clock."""
    migrate.upgrade(url)
    return create_app({"DATABASE_URL": url, "CLOCK": clock, "SECRET_KEY": secrets.token_hex(16),
                       "AUDIT_KEY": secrets.token_hex(16), "INSTANCE_PATH": str(folder / "instance"),
                       **config})


def sqlite_bench_app(prefix: str, clock, **config) -> tuple[Flask, Path]:
    """``bench_app`` on a new SQLite file in a new temporary folder; the app and the folder."""
    folder = Path(tempfile.mkdtemp(prefix=f"fieldapp-{prefix}-"))
    return bench_app(f"sqlite:///{folder / 'bench.sqlite3'}", clock, folder, **config), folder


@contextmanager
def postgres_database(admin_url: str, prefix: str) -> Iterator[str | None]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards; None (with the reason
    printed) when ``admin_url`` cannot create one, so the bench goes on with SQLite alone."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"fieldapp_{prefix}_{os.getpid()}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as problem:  # noqa: BLE001 - the bench says why it skipped PostgreSQL
        print(f"{prefix}: PostgreSQL skipped, {admin_url} is not usable: {problem}")
        admin.dispose()
        yield None
        return
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def child_in_placement(db_session, worker, now, n: int = 1):
    """A fictional child of ``worker``'s, in a group home since January 2025 (flushed, so it has
    its id)."""
    child = Child(case_id=f"BENCH-{n}", first_name="Bench",
                  last_name="Child" if n == 1 else f"Child {n}",
                  date_of_birth=date(2010, 5, 17) + timedelta(days=37 * (n - 1)), sex="F",
                  county="Greene", caseworker_id=worker.id, created_at=now)
    db_session.add(child)
    db_session.add(Placement(child=child, setting="group_home_staff", provider_name="Maple House",
                             started_on=date(2025, 1, 6), created_at=now))
    record_initial_status(db_session, child, "in_placement", datetime(2025, 1, 6, 6, tzinfo=UTC),
                          None, "bench set-up")
    db_session.flush()
    return child
