"""Backing up and restoring the embedded SQLite database (DESIGN §10, issue 8).

A backup is taken with SQLite's online backup API while the app serves: in WAL mode the copy reads
one consistent snapshot and writers carry on. A restore checks the file first (an intact fieldapp
database at this release's migration head), then swaps it in with a rename, so that the database
is at every moment either the old one or the whole new one. PostgreSQL has its own tools, pg_dump
and pg_restore (docs/deploy.md, "Backup and restore").
"""
from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from . import migrate

SQLITE_HEADER = b"SQLite format 3\x00"
# Tables whose rows mean someone has used the database: a restore over them needs --force.
DATA_TABLES = ("users", "children")
# Sidecar files of a database in WAL mode. Left beside a replaced file, SQLite would read the old
# database's pages into the new one.
SIDECARS = ("-wal", "-shm", "-journal")
BUSY_SECONDS = 20


class BackupError(Exception):
    """Why a backup or a restore was not done; the message is for the operator."""


@dataclass(frozen=True)
class Checked:
    """What a backup file holds, once checked."""
    path: Path
    revision: str
    audit_events: int
    tables: dict[str, int]

    @property
    def summary(self) -> str:
        return (f"{self.path}: intact, at migration {self.revision}, "
                f"{sum(self.tables.values())} rows in {len(self.tables)} tables, "
                f"{self.audit_events} audit events")


def sqlite_path(database_url: str) -> Path:
    """The file behind an SQLite URL; BackupError for any other database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"FIELDAPP_DATABASE_URL is a {url.get_backend_name()} database: back it up with its "
            "own tools, `pg_dump -Fc` and `pg_restore --no-owner` (docs/deploy.md, \"Backup and "
            "restore\").")
    if not url.database or url.database == ":memory:":
        raise BackupError("FIELDAPP_DATABASE_URL names no database file.")
    return Path(url.database)


def migration_head() -> str:
    return ScriptDirectory.from_config(migrate.alembic_config("")).get_current_head()


def table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def _check(conn: sqlite3.Connection, path: Path) -> Checked:
    """Refuse anything that is not an intact fieldapp database at this release's head."""
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise BackupError(f"{path} is damaged: {'; '.join(problems[:5])}")
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if not {"alembic_version", "audit_head", *DATA_TABLES} <= names:
            raise BackupError(f"{path} is an SQLite file, but not a fieldapp database.")
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        audit = conn.execute("SELECT last_seq FROM audit_head").fetchone()
    except sqlite3.DatabaseError as problem:
        raise BackupError(f"{path} cannot be read as a database: {problem}") from None
    head = migration_head()
    if revision is None or revision[0] != head:
        raise BackupError(
            f"{path} is at migration {revision[0] if revision else 'none'}, and this release "
            f"expects {head}. Restore it with the release that made it, then "
            "`fieldapp db upgrade`.")
    if audit is None:
        raise BackupError(f"{path} has no audit chain head: it is not a whole fieldapp database.")
    return Checked(path, head, audit[0], table_counts(conn))


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _copy(source: sqlite3.Connection, target: Path) -> None:
    """Copy a database into a new file with the online backup API, durably."""
    with closing(sqlite3.connect(target)) as copy:
        # One step (pages=-1): the whole copy reads one snapshot, and in WAL mode the app's writers
        # are not held up meanwhile. Stepping page by page would restart after every write.
        source.backup(copy, pages=-1)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no sidecars
    _fsync(target)


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


def backup(database_url: str, out: Path, *, force: bool = False) -> Checked:
    """Write an online backup of the configured SQLite database to ``out``, then check it."""
    source = sqlite_path(database_url)
    if not source.is_file():
        raise BackupError(f"There is no database at {source}.")
    if out.exists() and not force:
        raise BackupError(f"{out} already exists; choose another name, or add --force.")
    if not out.parent.is_dir():
        raise BackupError(f"There is no folder {out.parent} to write the backup in.")
    partial = _partial(out)
    try:
        with closing(sqlite3.connect(source, timeout=BUSY_SECONDS)) as conn:
            _copy(conn, partial)
        with closing(sqlite3.connect(f"file:{partial}?mode=ro", uri=True)) as copy:
            checked = _check(copy, partial)
        os.replace(partial, out)
        _fsync(out.parent)
    finally:
        partial.unlink(missing_ok=True)
    return Checked(out, checked.revision, checked.audit_events, checked.tables)


def check_backup(path: Path) -> Checked:
    if not path.is_file():
        raise BackupError(f"There is no file at {path}.")
    with open(path, "rb") as file:
        if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise BackupError(f"{path} is not an SQLite database.")
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return _check(conn, path)


def _has_data(conn: sqlite3.Connection) -> bool:
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return any(conn.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone()
               for t in DATA_TABLES if t in names)


def _take_over(target: Path, force: bool) -> sqlite3.Connection:
    """An exclusive hold on the database being replaced, or BackupError if it is in use or holds
    data (without --force)."""
    conn = sqlite3.connect(target, timeout=0, isolation_level=None)
    try:
        if _has_data(conn) and not force:
            raise BackupError(f"{target} already holds records. Restoring replaces all of them: "
                              "add --force if that is what you want.")
        # Leaving WAL mode needs the only connection to the file: a running server refuses it.
        mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        if mode != "delete":
            raise sqlite3.OperationalError(mode)
        conn.execute("BEGIN EXCLUSIVE")  # held until the new file has taken its place
    except sqlite3.OperationalError:
        conn.close()
        raise BackupError(f"{target} is in use. Stop the server (every gunicorn worker) first, "
                          "then restore.") from None
    except BaseException:
        conn.close()
        raise
    return conn


def restore(database_url: str, backup_file: Path, *, force: bool = False) -> Checked:
    """Replace the configured SQLite database with a checked backup, atomically."""
    target = sqlite_path(database_url)
    checked = check_backup(backup_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    holder = _take_over(target, force) if target.exists() else None
    partial = _partial(target)
    try:
        with closing(sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)) as source:
            _copy(source, partial)
        for suffix in SIDECARS:
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(partial, target)
        _fsync(target.parent)
    finally:
        partial.unlink(missing_ok=True)
        if holder is not None:
            holder.close()
    return Checked(target, checked.revision, checked.audit_events, checked.tables)
