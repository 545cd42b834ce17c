"""The data layer: UTC datetimes on both databases, SQLite's settings and its write lock."""
from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from fieldapp import clock as app_clock
from fieldapp import create_app, db
from fieldapp.clock import SystemClock
from fieldapp.db import UTCDateTime
from fieldapp.models import LoginFailure, Placement, User

CHICAGO = ZoneInfo("America/Chicago")
only_sqlite = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def count_failures() -> int:
    """Counted on a connection of its own, so it sees only what was committed."""
    with db.engine().connect() as conn:
        return conn.scalar(select(func.count()).select_from(LoginFailure))


def sqlite_path(app) -> str:
    return make_url(app.config["DATABASE_URL"]).database


@pytest.fixture
def statements(app):
    """Every SQL statement the app's engine sends, in order."""
    sent: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        sent.append(statement)

    engine = db.engine()
    event.listen(engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def raw_sqlite(app):
    """A plain sqlite3 connection to the app's file that gives up at once if the file is locked."""
    conn = sqlite3.connect(sqlite_path(app), timeout=0, isolation_level=None,
                           check_same_thread=False)
    yield conn
    conn.close()


# --- UTCDateTime -----------------------------------------------------------------------------

def test_aware_datetime_comes_back_aware_in_utc(app):
    local = datetime(2026, 7, 4, 21, 15, 30, 123456, tzinfo=CHICAGO)  # CDT, UTC-5
    with db.writing() as s:
        s.add(LoginFailure(kind="account", key="round.trip", failed_at=local))

    with Session(db.engine()) as other:  # not the identity map: what the database hands back
        stored = other.scalar(select(LoginFailure.failed_at)
                              .where(LoginFailure.key == "round.trip"))
    assert stored == local
    assert stored.tzinfo is UTC
    assert stored == datetime(2026, 7, 5, 2, 15, 30, 123456, tzinfo=UTC)


def test_the_database_holds_the_utc_instant(app):
    with db.writing() as s:
        s.add(LoginFailure(kind="account", key="raw", failed_at=datetime(2026, 1, 15, 8, 0,
                                                                          tzinfo=CHICAGO)))
    with db.engine().connect() as conn:
        if conn.dialect.name == "sqlite":
            raw = conn.exec_driver_sql("SELECT failed_at FROM login_failures").scalar()
            assert raw.startswith("2026-01-15 14:00:00")
        else:
            raw = conn.scalar(text("SELECT failed_at AT TIME ZONE 'UTC' FROM login_failures"))
            assert raw == datetime(2026, 1, 15, 14, 0)


def test_comparisons_use_the_instant_not_the_wall_time(app):
    at = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
    with db.writing() as s:
        s.add(LoginFailure(kind="account", key="cmp", failed_at=at))
    s = db.session()
    # 14:30 in Chicago is 20:30 UTC: after the row, though 14:30 < 20:00 on the clock face.
    later = datetime(2026, 3, 2, 14, 30, tzinfo=CHICAGO)
    earlier = datetime(2026, 3, 2, 13, 30, tzinfo=CHICAGO)
    assert s.scalar(select(func.count()).where(LoginFailure.failed_at < later)) == 1
    assert s.scalar(select(func.count()).where(LoginFailure.failed_at < earlier)) == 0


def test_naive_datetime_is_refused_and_nothing_is_written(app):
    with pytest.raises(StatementError) as refused:
        with db.writing() as s:
            s.add(LoginFailure(kind="account", key="naive", failed_at=datetime(2026, 3, 2, 20, 0)))
    assert isinstance(refused.value.orig, ValueError)
    assert "naive datetime" in str(refused.value)
    assert count_failures() == 0


def test_none_passes_through(app):
    dialect = db.engine().dialect
    assert UTCDateTime().process_bind_param(None, dialect) is None
    assert UTCDateTime().process_result_value(None, dialect) is None


# --- db.writing() ----------------------------------------------------------------------------

def test_writing_commits_on_success(app):
    with db.writing() as s:
        s.add(LoginFailure(kind="account", key="kept", failed_at=app_clock.now()))
    assert count_failures() == 1


def test_writing_rolls_back_on_error(app):
    with pytest.raises(RuntimeError, match="half way"):
        with db.writing() as s:
            s.add(LoginFailure(kind="account", key="lost", failed_at=app_clock.now()))
            s.flush()
            raise RuntimeError("half way")
    assert count_failures() == 0
    assert not db.session().in_transaction()


def test_foreign_keys_are_enforced(app):
    with pytest.raises(IntegrityError):
        with db.writing() as s:
            s.add(Placement(child_id=987654, setting="kinship", provider_name="Nobody",
                            started_on=date(2026, 1, 1), created_at=app_clock.now()))
    assert db.session().scalar(select(func.count()).select_from(Placement)) == 0


@only_sqlite
def test_sqlite_connection_settings(app):
    with db.engine().connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 15000
    # The per-request session's connection is set up the same way.
    assert db.session().connection().exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@only_sqlite
def test_writing_takes_the_write_lock_at_once(app, raw_sqlite, statements):
    with db.writing():
        assert statements[-1] == "BEGIN IMMEDIATE"
        # Nothing written yet, and still another writer is kept out.
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            raw_sqlite.execute("BEGIN IMMEDIATE")
    raw_sqlite.execute("BEGIN IMMEDIATE")  # released when the block ends
    raw_sqlite.execute("ROLLBACK")


@only_sqlite
def test_a_plain_read_does_not_take_the_write_lock(app, raw_sqlite, statements):
    s = db.session()
    assert s.scalars(select(User)).all() == []
    assert s.in_transaction()
    assert "BEGIN" in statements and "BEGIN IMMEDIATE" not in statements
    raw_sqlite.execute("BEGIN IMMEDIATE")
    raw_sqlite.execute("INSERT INTO login_failures (kind, key, failed_at) "
                       "VALUES ('account', 'other.worker', '2026-03-02 20:00:00.000000')")
    raw_sqlite.execute("COMMIT")


@only_sqlite
def test_writing_ends_an_open_read_before_locking(app, raw_sqlite, statements):
    s = db.session()
    s.scalars(select(User)).all()  # a read transaction is open...
    with db.writing():  # ...and is committed, not upgraded, so no other writer can deadlock it
        assert statements[-1] == "BEGIN IMMEDIATE"
        assert statements.count("BEGIN") == 1
    assert statements.count("BEGIN IMMEDIATE") == 1


@only_sqlite
def test_a_writer_waits_for_the_lock_instead_of_failing(app, raw_sqlite):
    raw_sqlite.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: raw_sqlite.execute("COMMIT"))
    release.start()
    try:
        with db.writing() as s:  # blocks on the busy timeout until the other writer commits
            s.add(LoginFailure(kind="account", key="patient", failed_at=app_clock.now()))
    finally:
        release.join()
    assert count_failures() == 1


# --- The clock -------------------------------------------------------------------------------

def test_the_fixed_clock_is_the_apps_clock(app, clock):
    assert app.extensions["fieldapp.clock"] is clock
    assert app_clock.now() == clock.now() == datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
    clock.advance(minutes=90)
    with app.test_request_context("/"):
        assert app_clock.now() == datetime(2026, 3, 2, 21, 30, tzinfo=UTC)


def test_today_is_the_agencys_date(app, clock):
    clock.set(datetime(2026, 3, 3, 3, 0, tzinfo=UTC))  # 21:00 on the 2nd in Missouri
    assert app_clock.today() == date(2026, 3, 2)
    clock.advance(hours=3)
    assert app_clock.today() == date(2026, 3, 3)


def test_rows_written_by_the_app_carry_the_fixed_time(app, clock, make_user):
    clock.advance(days=3)
    user = make_user("timed.user")
    created = db.session().scalar(select(User.created_at).where(User.id == user.id))
    assert created == datetime(2026, 3, 5, 20, 0, tzinfo=UTC)


def test_without_a_test_clock_the_system_clock_is_used(app_config):
    config = {k: v for k, v in app_config.items() if k != "CLOCK"}
    real = create_app(config)
    try:
        assert isinstance(real.extensions["fieldapp.clock"], SystemClock)
        with real.app_context():
            assert abs(app_clock.now() - datetime.now(UTC)) < timedelta(seconds=5)
    finally:
        real.extensions["fieldapp.engine"].dispose()
