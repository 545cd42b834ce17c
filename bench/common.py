"""What the benchmarks share: a throwaway app on a fresh SQLite file, and a throwaway PostgreSQL
database, each migrated by the same code that migrates production."""
from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from fieldapp import create_app, migrate

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
