"""The Alembic migrations: up from nothing, down again, and in step with the ORM mappings."""
from __future__ import annotations

import re
import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, String, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from fieldapp import migrate, models  # noqa: F401  (models registers the mappings)
from fieldapp.db import Base

# The foundation's tables; later migrations add more, and every mapped table must exist.
FOUNDATION = {"teams", "users", "children", "placements", "visitation_plans", "status_changes",
              "location_reviews", "handovers", "break_glass_grants", "login_failures",
              "audit_events"}
TABLES = set(Base.metadata.tables)
CHECK_CONSTRAINTS = {"users": {"ck_users_role"}, "children": {"ck_children_status"},
                     "status_changes": {"ck_status_changes_status"}}


@pytest.fixture
def engine(empty_db_url):
    engine = create_engine(empty_db_url)
    yield engine
    engine.dispose()


def tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def head_revision() -> str:
    return ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()


def current_revision(engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _default_text(default) -> str | None:
    """A server default as plain text, however the database or the metadata spells it."""
    if default is None:
        return None
    value = getattr(default, "arg", default)
    value = str(getattr(value, "text", value)).strip()
    while value.startswith("(") and value.endswith(")"):  # SQLite after a batch copy: ('')
        value = value[1:-1].strip()
    value = re.sub(r"::[a-z ]+$", "", value)  # PostgreSQL's '...'::text
    return value.strip("'")


def schema_differences(engine, metadata: MetaData = Base.metadata) -> list:
    """What autogenerate would write to make the database match the mappings."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "compare_server_default": True})
        diffs = compare_metadata(context, metadata)
    flat = [d for diff in diffs for d in (diff if isinstance(diff, list) else [diff])]
    # SQLite reflects DEFAULT '' as the text "''" or "('')": the same default, spelt differently.
    return [d for d in flat if not (d[0] == "modify_default"
                                    and _default_text(d[-2]) == _default_text(d[-1]))]


def test_upgrade_from_empty_creates_every_table(empty_db_url, engine):
    assert tables(engine) == set()
    migrate.upgrade(empty_db_url)

    assert tables(engine) == TABLES  # every mapped table has a migration, and back
    assert FOUNDATION <= TABLES
    assert current_revision(engine) == head_revision()


def test_migrated_schema_matches_the_mappings(empty_db_url, engine):
    migrate.upgrade(empty_db_url)
    assert schema_differences(engine) == []


def test_the_comparison_notices_a_real_difference(empty_db_url, engine):
    migrate.upgrade(empty_db_url)
    drifted = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["users"].append_column(Column("nickname", String(40)))
    drifted.tables["users"].c.phone.nullable = False
    drifted.tables["login_failures"].c.key.type = String(100)
    found = {(d[0], d[2], d[3]) if d[0] != "add_column" else (d[0], d[2], d[3].name)
             for d in schema_differences(engine, drifted)}
    assert found == {("add_column", "users", "nickname"), ("modify_nullable", "users", "phone"),
                     ("modify_type", "login_failures", "key")}


def test_named_check_constraints_exist_and_hold(empty_db_url, engine):
    migrate.upgrade(empty_db_url)
    inspector = inspect(engine)
    for table, names in CHECK_CONSTRAINTS.items():
        assert names <= {c["name"] for c in inspector.get_check_constraints(table)}

    with pytest.raises(IntegrityError, match="ck_users_role|CHECK constraint failed"):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO users (username, display_name, role, password_hash, "
                              "created_at) VALUES ('x', 'X', 'wizard', 'h', '2026-01-01')"))


def test_server_defaults_fill_new_rows(empty_db_url, engine):
    migrate.upgrade(empty_db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (username, display_name, role, password_hash, "
                          "created_at) VALUES ('x', 'X', 'auditor', 'h', '2026-01-01')"))
        active, epoch = conn.execute(text("SELECT active, session_epoch FROM users")).one()
    assert bool(active) is True and epoch == 0


def test_downgrade_to_base_and_upgrade_again(empty_db_url, engine):
    migrate.upgrade(empty_db_url)
    migrate.downgrade(empty_db_url, "base")
    assert tables(engine) == set()
    assert current_revision(engine) is None

    migrate.upgrade(empty_db_url)
    assert tables(engine) == TABLES
    assert current_revision(engine) == head_revision()
    assert schema_differences(engine) == []


def test_upgrade_twice_is_harmless(empty_db_url, engine):
    migrate.upgrade(empty_db_url)
    migrate.upgrade(empty_db_url)
    assert tables(engine) == TABLES and current_revision(engine) == head_revision()


def test_migrated_sqlite_file_is_in_wal_mode(tmp_path):
    """Migrations connect as the app does (make_engine's PRAGMAs), so the file starts as WAL."""
    path = tmp_path / "fresh.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
