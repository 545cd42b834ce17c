"""Roster import: children and their current placements from the state system's CSV.

The whole file is checked before anything is written, and rows are keyed on the state case id, so
importing the same file twice changes nothing. The columns are documented in docs/roster-format.md.
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock
from .audit import record_event
from .caseloads import reassign_child
from .models import Child, Placement, User
from .reconciliation import FACES_ARRANGEMENTS, arrangement_key, record_arrangement
from .status import record_initial_status
from .summaries import refresh_child
from .vocabulary import PLACEMENT_SETTINGS, SEXES

COLUMNS = ("case_id", "first_name", "last_name", "date_of_birth", "sex", "county",
           "caseworker_username", "placement_setting", "placement_provider", "placement_started_on")
# May be left out, so files made before the column existed still import; an empty cell says nothing.
OPTIONAL_COLUMNS = ("living_arrangement",)
MAX_ROWS = 50_000


@dataclass(frozen=True)
class RosterRow:
    line: int
    case_id: str
    first_name: str
    last_name: str
    date_of_birth: date
    sex: str
    county: str
    caseworker: User
    placement_setting: str
    placement_provider: str
    placement_started_on: date
    living_arrangement: str | None = None  # a FACES_ARRANGEMENTS key, when the file gives one


@dataclass
class RosterReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return f"{self.created} added, {self.updated} updated, {self.unchanged} unchanged"


class RosterInvalid(ValueError):
    """The file has problems; nothing was written. ``problems`` are "line N: reason" strings."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s) in the roster; nothing was imported")
        self.problems = problems


def _date(value: str, name: str, problems: list[str], line: int) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(f"line {line}: {name} {value!r} is not a date in YYYY-MM-DD form")
        return None


def parse_roster(db_session: Session, raw: bytes) -> list[RosterRow]:
    """Every row of the file, checked; raises RosterInvalid listing every bad row."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as bad:
        line = bad.object[:bad.start].count(b"\n") + 1
        raise RosterInvalid([f"line {line}: the file is not UTF-8 text; export it from the state "
                             "system as CSV (UTF-8)"]) from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise RosterInvalid([f"line 1: missing column(s): {', '.join(missing)}"])
    caseworkers = {u.username: u for u in db_session.scalars(
        select(User).where(User.role == "caseworker", User.active))}
    today = clock.today()
    rows, problems, seen = [], [], {}
    for count, record in enumerate(reader, start=1):
        number = reader.line_num  # the line the row ends on, counting blank lines and line breaks
        if count > MAX_ROWS:
            problems.append(f"line {number}: the file has more than {MAX_ROWS} rows; split it")
            break
        values = {c: (record.get(c) or "").strip() for c in COLUMNS + OPTIONAL_COLUMNS}
        before = len(problems)
        blank = [c for c in COLUMNS if not values[c]]
        if blank:
            problems.append(f"line {number}: empty {', '.join(blank)}")
            continue
        if values["case_id"] in seen:
            problems.append(f"line {number}: case_id {values['case_id']} repeats line "
                            f"{seen[values['case_id']]}")
        seen.setdefault(values["case_id"], number)
        born = _date(values["date_of_birth"], "date_of_birth", problems, number)
        started = _date(values["placement_started_on"], "placement_started_on", problems, number)
        if born and born > today:
            problems.append(f"line {number}: date_of_birth is in the future")
        if born and started and started < born:
            problems.append(f"line {number}: placement_started_on is before the date of birth")
        if started and started > today:
            problems.append(f"line {number}: placement_started_on is in the future")
        if values["sex"].upper() not in SEXES:
            problems.append(f"line {number}: sex {values['sex']!r} is not one of "
                            f"{', '.join(SEXES)}")
        if values["placement_setting"] not in PLACEMENT_SETTINGS:
            problems.append(f"line {number}: placement_setting {values['placement_setting']!r} is "
                            "not a known setting (see docs/roster-format.md)")
        worker = caseworkers.get(values["caseworker_username"].lower())
        if worker is None:
            problems.append(f"line {number}: caseworker_username {values['caseworker_username']!r} "
                            "is not an active caseworker")
        arrangement = arrangement_key(values["living_arrangement"])
        if values["living_arrangement"] and arrangement is None:
            problems.append(f"line {number}: living_arrangement {values['living_arrangement']!r} "
                            f"is not one of {', '.join(FACES_ARRANGEMENTS)} (or AFCARS 12, 13)")
        if len(problems) == before:
            rows.append(RosterRow(number, values["case_id"], values["first_name"],
                                  values["last_name"], born, values["sex"].upper(),
                                  values["county"], worker, values["placement_setting"],
                                  values["placement_provider"], started, arrangement))
    if problems:
        raise RosterInvalid(problems)
    if not rows:
        raise RosterInvalid(["line 2: the file has a header but no children"])
    return rows


def _apply_row(db_session: Session, row: RosterRow, actor: User | None) -> str:
    """Create or update one child; returns "created", "updated" or "unchanged"."""
    child = db_session.scalar(select(Child).where(Child.case_id == row.case_id))
    if child is None:
        child = Child(case_id=row.case_id, first_name=row.first_name, last_name=row.last_name,
                      date_of_birth=row.date_of_birth, sex=row.sex, county=row.county,
                      caseworker=row.caseworker, created_at=clock.now())
        db_session.add(child)
        db_session.add(Placement(child=child, setting=row.placement_setting,
                                 provider_name=row.placement_provider,
                                 started_on=row.placement_started_on, created_at=clock.now()))
        record_initial_status(db_session, child, "in_placement",
                              clock.local_midnight(row.placement_started_on), actor, "Roster import")
        if row.living_arrangement:
            db_session.flush()  # the child's id
            record_arrangement(db_session, child.id, row.living_arrangement)
        return "created"
    changed = False
    for name in ("first_name", "last_name", "date_of_birth", "sex", "county"):
        if getattr(child, name) != getattr(row, name):
            setattr(child, name, getattr(row, name))
            changed = True
    if child.caseworker_id != row.caseworker.id:
        reassign_child(db_session, child, row.caseworker, actor, "Roster import")
        changed = True
    current = child.current_placement
    if current is None or (current.setting, current.provider_name, current.started_on) != (
            row.placement_setting, row.placement_provider, row.placement_started_on):
        if current is not None:
            current.ended_on = max(row.placement_started_on, current.started_on)
        db_session.add(Placement(child=child, setting=row.placement_setting,
                                 provider_name=row.placement_provider,
                                 started_on=row.placement_started_on, created_at=clock.now()))
        changed = True
    if changed:
        # A new placement can change the child's risk at the T0 of past episodes (six or more
        # placements, a congregate setting), which the measures read from the summary rows.
        db_session.flush()
        refresh_child(db_session, child.id)
    # FACES's arrangement is only stored, for reconciliation: an import never changes a status.
    moved = bool(row.living_arrangement) and record_arrangement(db_session, child.id,
                                                                row.living_arrangement)
    return "updated" if changed or moved else "unchanged"


def import_roster(db_session: Session, raw: bytes, actor: User | None) -> RosterReport:
    """Check the whole file, then apply every row; call inside one write transaction."""
    rows = parse_roster(db_session, raw)
    report = RosterReport()
    for row in rows:
        outcome = _apply_row(db_session, row, actor)
        setattr(report, outcome, getattr(report, outcome) + 1)
        db_session.flush()
    record_event(db_session, actor, "roster.import", "roster", None,
                 changes={"sha256": hashlib.sha256(raw).hexdigest(), "created": report.created,
                          "updated": report.updated, "unchanged": report.unchanged})
    return report
