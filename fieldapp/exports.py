"""The SQLite extract: episodes, steps, contacts and measures in a standalone file for Datasette.

Built with sqlite-utils. Each table is declared once (``TABLES``): its key, its foreign keys, the
columns that hold names or free text (dropped when de-identified) and the ones searched as notes.
A row producer reads the live database in batches, so the extract of a national caseload never
sits in memory.

De-identified (the only form an auditor may take away, DESIGN §1 and §9): no names, free text or
contact names; the age in years instead of the date of birth; a stable pseudonym instead of the
case id, and the same episode pseudonym the auditor's drill-downs show.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import os
import tempfile
from typing import BinaryIO

import sqlite_utils
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from . import clock
from .audit import record_event
from .compliance.drill import child_pseudonym, pseudonym
from .compliance.query import Population
from .compliance.specs import MEASURES
from .compliance.summary import compliance_summary, csv_rows as measure_rows
from .identification import age_on
from .models import (Child, Episode, EpisodeStep, FacesArrangement, PolicyVersion, SearchContact,
                     StepEntry, Team, User)
from .models.summaries import episode_summaries as S
from .risk import add_months

BATCH = 1000


@dataclass
class Naming:
    """How rows name children and episodes in this extract. An episode is named on every step,
    entry and contact row, so each pseudonym (an HMAC) is worked out once."""
    deidentified: bool
    _episodes: dict[int, str] = field(default_factory=dict)

    def child(self, case_id: str) -> str:
        return child_pseudonym(case_id) if self.deidentified else case_id

    def episode(self, episode_id: int | None) -> str | None:
        if episode_id is None:
            return None
        if episode_id not in self._episodes:
            self._episodes[episode_id] = pseudonym(episode_id)
        return self._episodes[episode_id]


@dataclass(frozen=True)
class ExportTable:
    name: str
    pk: str | tuple[str, ...]
    columns: dict[str, type]  # every column, in order, with its SQLite type
    rows: Callable[[Session, Naming], Iterator[dict]]
    count: Callable[[Session], int]
    foreign_keys: tuple[tuple[str, str, str], ...] = ()
    private: frozenset[str] = frozenset()  # names and free text: left out when de-identified
    notes: tuple[str, ...] = ()  # full-text searched (identified extracts only: notes are private)

    def columns_for(self, naming: Naming) -> dict[str, type]:
        if naming.deidentified:
            return {c: t for c, t in self.columns.items() if c not in self.private}
        return dict(self.columns)


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def _stream(db_session: Session, query) -> Iterator:
    return db_session.execute(query.execution_options(yield_per=BATCH))


def _count(model_or_table) -> Callable[[Session], int]:
    return lambda s: s.scalar(select(func.count()).select_from(model_or_table))


# --- row producers, one per table -------------------------------------------------------------

def _children(db_session: Session, naming: Naming) -> Iterator[dict]:
    today = clock.today()
    query = (select(Child, Team.name.label("team"), FacesArrangement.arrangement)
             .outerjoin(User, User.id == Child.caseworker_id).outerjoin(Team, Team.id == User.team_id)
             .outerjoin(FacesArrangement, FacesArrangement.child_id == Child.id)
             .order_by(Child.id))
    for child, team, arrangement in _stream(db_session, query):
        yield {"child": naming.child(child.case_id), "first_name": child.first_name,
               "last_name": child.last_name, "date_of_birth": _iso(child.date_of_birth),
               "age_years": age_on(child.date_of_birth, today), "sex": child.sex,
               "county": child.county, "team": team, "status": child.status,
               "status_since": _iso(child.status_since), "faces_arrangement": arrangement}


def _episodes(db_session: Session, naming: Naming) -> Iterator[dict]:
    query = (select(Episode, Child.case_id, Child.date_of_birth, PolicyVersion.key, Team.name)
             .join(Child, Child.id == Episode.child_id)
             .join(PolicyVersion, PolicyVersion.id == Episode.policy_version_id)
             .outerjoin(S, S.c.episode_id == Episode.id).outerjoin(Team, Team.id == S.c.team_id)
             .order_by(Episode.id))
    for e, case_id, born, policy, team in _stream(db_session, query):
        t0_day = e.discovered_at.astimezone(clock.agency_zone()).date()
        yield {"episode": naming.episode(e.id), "episode_id": e.id,
               "child": naming.child(case_id), "team_at_t0": team, "policy": policy,
               "t0_discovered_at": _iso(e.discovered_at), "age_at_t0": age_on(born, t0_day),
               "discovered_by_role": e.discovered_by_role,
               "discovered_by_name": e.discovered_by_name, "how_missing": e.how_missing,
               "last_seen_at": _iso(e.last_seen_at), "last_seen_place": e.last_seen_place,
               "t1_located_at": _iso(e.located_at), "located_where": e.located_where,
               "located_place": e.located_place, "located_by": e.located_by,
               "t2_returned_at": _iso(e.returned_at), "end_reason": e.end_reason,
               "ended_at": _iso(e.ended_at), "court_order_date": _iso(e.court_order_date),
               "previous_episode": naming.episode(e.previous_episode_id)}


# The three large tables are read as plain rows, not ORM objects: building an object per row
# was a third of the time of a large extract.

def _steps(db_session: Session, naming: Naming) -> Iterator[dict]:
    t = EpisodeStep
    query = select(t.id, t.episode_id, t.step_key, t.checklist, t.position, t.raised_at,
                   t.due_at, t.closed_reason, t.closed_at).order_by(t.id)
    for step in _stream(db_session, query):
        yield {"id": step.id, "episode": naming.episode(step.episode_id),
               "step_key": step.step_key, "checklist": step.checklist, "position": step.position,
               "raised_at": _iso(step.raised_at), "due_at": _iso(step.due_at),
               "closed_reason": step.closed_reason, "closed_at": _iso(step.closed_at)}


def _step_entries(db_session: Session, naming: Naming) -> Iterator[dict]:
    later = aliased(StepEntry)
    superseded = exists().where(later.supersedes_id == StepEntry.id)
    e = StepEntry
    query = (select(e.id, e.episode_step_id, EpisodeStep.episode_id, EpisodeStep.step_key,
                    e.outcome, e.done_at, e.recorded_at, e.received_at, User.username,
                    e.evidence, e.reason, e.supersedes_id, superseded.label("superseded"),
                    e.clock_skew, e.imported)
             .join(EpisodeStep, EpisodeStep.id == e.episode_step_id)
             .outerjoin(User, User.id == e.recorded_by_id).order_by(e.id))
    for entry in _stream(db_session, query):
        yield {"id": entry.id, "step": entry.episode_step_id,
               "episode": naming.episode(entry.episode_id), "step_key": entry.step_key,
               "outcome": entry.outcome, "done_at": _iso(entry.done_at),
               "recorded_at": _iso(entry.recorded_at), "received_at": _iso(entry.received_at),
               "recorded_by": entry.username, "evidence": entry.evidence, "reason": entry.reason,
               "supersedes": entry.supersedes_id, "superseded": bool(entry.superseded),
               "clock_skew": bool(entry.clock_skew), "imported": bool(entry.imported)}


def _contacts(db_session: Session, naming: Naming) -> Iterator[dict]:
    c = SearchContact
    query = (select(c.id, c.episode_id, c.purpose, c.person, c.relationship_to_child, c.method,
                    c.contacted_at, c.reached, c.learned, User.username, c.recorded_at,
                    c.received_at, c.clock_skew)
             .outerjoin(User, User.id == c.recorded_by_id).order_by(c.id))
    for contact in _stream(db_session, query):
        yield {"id": contact.id, "episode": naming.episode(contact.episode_id),
               "purpose": contact.purpose, "person": contact.person,
               "relationship_to_child": contact.relationship_to_child, "method": contact.method,
               "contacted_at": _iso(contact.contacted_at), "reached": bool(contact.reached),
               "learned": contact.learned, "recorded_by": contact.username,
               "recorded_at": _iso(contact.recorded_at), "received_at": _iso(contact.received_at),
               "clock_skew": bool(contact.clock_skew)}


# The summary row's own columns, as the measures read them (docs/measures.md).
SUMMARY_COLUMNS = tuple(c.name for c in S.columns
                        if c.name not in ("episode_id", "child_id", "team_id", "refreshed_at"))


def _episode_measures(db_session: Session, naming: Naming) -> Iterator[dict]:
    query = (select(S, Team.name.label("team_name")).outerjoin(Team, Team.id == S.c.team_id)
             .order_by(S.c.episode_id))
    for row in _stream(db_session, query):
        values = row._mapping
        out = {"episode": naming.episode(values["episode_id"]), "team_at_t0": values["team_name"]}
        for name in SUMMARY_COLUMNS:
            value = values[name]
            out[name] = _iso(value) if isinstance(value, (datetime, date)) else value
        yield out


def measures_period(today: date) -> Population:
    """The dashboard's default: the twelve months to today, whole agency."""
    return Population(add_months(today.replace(day=1), -11), today)


def _measures(db_session: Session, naming: Naming) -> Iterator[dict]:
    pop = measures_period(clock.today())
    for row in measure_rows(compliance_summary(db_session, pop)):
        yield {"period_from": pop.start.isoformat(), "period_to": pop.end.isoformat(), **row}


def _summary_types() -> dict[str, type]:
    types = {}
    for name in SUMMARY_COLUMNS:
        try:
            python = S.c[name].type.python_type
        except NotImplementedError:
            python = str
        types[name] = python if python in (bool, int) else str
    return types


EPISODE = ("episode", "episodes", "episode")
# One row per measure and one per component of a measure with several steps (summary.csv_rows).
MEASURE_ROWS = sum(1 + (len(m.steps) if m.shape == "steps" and len(m.steps) > 1 else 0)
                   for m in MEASURES)
TABLES = (
    ExportTable("children", "child", {
        "child": str, "first_name": str, "last_name": str, "date_of_birth": str, "age_years": int,
        "sex": str, "county": str, "team": str, "status": str, "status_since": str,
        "faces_arrangement": str}, _children, _count(Child),
        private=frozenset({"first_name", "last_name", "date_of_birth"})),
    ExportTable("episodes", "episode", {
        "episode": str, "episode_id": int, "child": str, "team_at_t0": str, "policy": str,
        "t0_discovered_at": str, "age_at_t0": int, "discovered_by_role": str,
        "discovered_by_name": str, "how_missing": str, "last_seen_at": str,
        "last_seen_place": str, "t1_located_at": str, "located_where": str, "located_place": str,
        "located_by": str, "t2_returned_at": str, "end_reason": str, "ended_at": str,
        "court_order_date": str, "previous_episode": str}, _episodes, _count(Episode),
        foreign_keys=(("child", "children", "child"), ("previous_episode", "episodes", "episode")),
        private=frozenset({"episode_id", "discovered_by_name", "last_seen_place", "located_place",
                           "located_by"}),
        notes=("last_seen_place", "located_place")),
    ExportTable("steps", "id", {
        "id": int, "episode": str, "step_key": str, "checklist": str, "position": int,
        "raised_at": str, "due_at": str, "closed_reason": str, "closed_at": str},
        _steps, _count(EpisodeStep), foreign_keys=(EPISODE,)),
    ExportTable("step_entries", "id", {
        "id": int, "step": int, "episode": str, "step_key": str, "outcome": str, "done_at": str,
        "recorded_at": str, "received_at": str, "recorded_by": str, "evidence": str,
        "reason": str, "supersedes": int, "superseded": bool, "clock_skew": bool,
        "imported": bool}, _step_entries, _count(StepEntry),
        foreign_keys=(("step", "steps", "id"), EPISODE, ("supersedes", "step_entries", "id")),
        private=frozenset({"recorded_by", "evidence", "reason"}), notes=("reason", "evidence")),
    ExportTable("contacts", "id", {
        "id": int, "episode": str, "purpose": str, "person": str, "relationship_to_child": str,
        "method": str, "contacted_at": str, "reached": bool, "learned": str, "recorded_by": str,
        "recorded_at": str, "received_at": str, "clock_skew": bool},
        _contacts, _count(SearchContact), foreign_keys=(EPISODE,),
        private=frozenset({"person", "learned", "recorded_by"}), notes=("learned",)),
    ExportTable("episode_measures", "episode", {
        "episode": str, "team_at_t0": str, **_summary_types()},
        _episode_measures, _count(S), foreign_keys=(EPISODE,)),
    ExportTable("measures", ("measure", "part"), {
        "period_from": str, "period_to": str, "measure": str, "part": str, "label": str,
        "unit": str, "count": int, "denominator": int, "percent": float, "within_count": int,
        "within_denominator": int, "within_percent": float, "attempted": int},
        _measures, lambda s: MEASURE_ROWS),
)


@dataclass
class ExportReport:
    path: Path
    deidentified: bool
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        counts = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in self.rows.items())
        kind = "de-identified extract" if self.deidentified else "extract"
        return f"Wrote {kind} {self.path}: {counts}."


def expected_rows(db_session: Session) -> int:
    """Roughly how many rows the extract will hold (for a progress bar)."""
    return sum(table.count(db_session) for table in TABLES)


def export_sqlite(db_session: Session, path: Path, *, deidentified: bool,
                  progress: Callable[[int], None] = lambda n: None) -> ExportReport:
    """Write the extract to ``path`` (replacing any file there); ``progress`` hears each batch."""
    path = Path(path)
    path.unlink(missing_ok=True)
    naming = Naming(deidentified)
    report = ExportReport(path, deidentified)
    out = sqlite_utils.Database(path)
    try:
        # A new file that is thrown away if the build fails: no journal and no sync per batch
        # (a commit per batch with both was 80% of the time of a large extract).
        out.conn.execute("PRAGMA journal_mode = OFF")
        out.conn.execute("PRAGMA synchronous = OFF")
        out.conn.execute("PRAGMA foreign_keys = ON")
        for table in TABLES:
            report.rows[table.name] = _write_table(out, db_session, table, naming, progress)
        out.conn.execute("PRAGMA journal_mode = DELETE")
    except BaseException:
        out.close()
        path.unlink(missing_ok=True)
        raise
    out.close()
    return report


def _write_table(out: sqlite_utils.Database, db_session: Session, table: ExportTable,
                 naming: Naming, progress: Callable[[int], None]) -> int:
    columns = table.columns_for(naming)
    target = out.table(table.name)
    target.create(columns, pk=table.pk, foreign_keys=list(table.foreign_keys))
    written, batch = 0, []
    for row in table.rows(db_session, naming):
        batch.append({c: row.get(c) for c in columns})
        if len(batch) == BATCH:
            written += _flush(target, batch, progress)
    written += _flush(target, batch, progress)
    notes = [c for c in table.notes if c in columns]
    if notes:
        target.enable_fts(notes)
    return written


def _flush(target, batch: list[dict], progress: Callable[[int], None]) -> int:
    if not batch:
        return 0
    target.insert_all(batch)
    n = len(batch)
    batch.clear()
    progress(n)
    return n


def export_to_handle(db_session: Session, *, deidentified: bool) -> tuple[BinaryIO, ExportReport]:
    """The extract as an open file with no name left on disk (for a download): the file is
    unlinked once open, so it disappears when the response closes it."""
    descriptor, name = tempfile.mkstemp(suffix=".db", prefix="fieldapp-export-")
    os.close(descriptor)
    try:
        report = export_sqlite(db_session, Path(name), deidentified=deidentified)
        handle = open(name, "rb")
    finally:
        os.unlink(name)
    return handle, report


def record_export(db_session: Session, actor: User | None, report: ExportReport) -> None:
    """The audit event of an export: its kind and row counts, never its content."""
    record_event(db_session, actor, "export.sqlite", "export", None,
                 changes={"deidentified": report.deidentified, **report.rows})
