"""The data layer shared by SQLite and PostgreSQL: engine, per-request session, column types.

The schema itself lives only in the Alembic migrations; the ORM models in ``models`` map onto it.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC
from typing import Iterator

from flask import Flask, current_app, g
from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

SQLITE_BUSY_TIMEOUT_MS = 20_000
_WRITE = "fieldapp_write"
# The key of the transaction-level advisory lock that write transactions take on PostgreSQL
# ("fieldapp" in ASCII). Advisory locks are per database, so other databases on the server do not
# share it.
POSTGRES_WRITE_LOCK = 0x6669656C64617070


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as UTC and always returns them aware in UTC, on both databases.

    SQLite has no time zones, so the value is kept as naive UTC text there; PostgreSQL keeps a
    timestamptz. Naive datetimes are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored; give it a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return _postgres_engine(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    # SQLAlchemy's pysqlite recipe: the driver's own transaction handling is switched off so that
    # we issue BEGIN ourselves, and a write transaction takes the write lock at its start.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # Without IMMEDIATE, two workers that both read and then write deadlock, and SQLite answers
        # "database is locked" at once instead of waiting for the busy timeout.
        write = connection.get_execution_options().get(_WRITE)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _postgres_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # One writer at a time, as BEGIN IMMEDIATE gives on SQLite. Write transactions lock rows in
        # different orders: a form locks its episode's summary row and then the audit head, while
        # a sync batch locks the head at its first op and the summaries of its episodes at its end.
        # Concurrently, PostgreSQL breaks that cycle by aborting one of them ("deadlock detected",
        # a 500 for the user; found by tests/test_concurrency.py). The audit head already lets one
        # writer at a time commit, so taking this lock up front costs little. Readers never wait.
        if connection.get_execution_options().get(_WRITE):
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({POSTGRES_WRITE_LOCK})")

    return engine


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["fieldapp.engine"] = engine
    app.extensions["fieldapp.sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def engine() -> Engine:
    return current_app.extensions["fieldapp.engine"]


def session() -> Session:
    """The session of the current request or CLI command, opened on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["fieldapp.sessionmaker"]()
    return g.db_session


def _close_session(_exc=None) -> None:
    db_session = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()


@contextmanager
def writing() -> Iterator[Session]:
    """One write transaction, committed on success, rolled back on error. It holds the write lock
    from its start: BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL.

    Any read transaction still open is ended first, because a read transaction that later writes is
    exactly what makes concurrent SQLite writers fail. Keep slow work (hashing, images, PDFs) outside.
    """
    db_session = session()
    if db_session.in_transaction():
        db_session.commit()
    db_session.connection(execution_options={_WRITE: True})
    try:
        yield db_session
        db_session.commit()
    except BaseException:
        db_session.rollback()
        raise
