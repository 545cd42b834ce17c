"""The import file's records (docs/import-format.md): which fields each type has, and reading one
line into a checked ``Record``.

The field lists are data: a type is a tuple of ``Field``s, and each field names the reader that
checks its value. A reader returns the clean value or raises ``Bad`` with the reason, worded for
the person who exported the file.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from .. import clock
from ..contacts import METHODS, PURPOSES, RELATIONSHIPS
from ..episodes import DISCOVERED_BY, END_REASONS, HOW_MISSING, LOCATED_WHERE
from ..interventions import INTERVENTION_KINDS
from ..policy import OUTCOMES
from ..risk import MISSOURI_KEYS
from ..vocabulary import PLACEMENT_SETTINGS, SEXES, STATUSES, VISIT_FREQUENCIES

MAX_LINES = 2_000_000
MAX_ID = 100


class HistoryInvalid(ValueError):
    """The file has problems; nothing was written. ``problems`` are "line N: reason" strings,
    in line order."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s) in the file; nothing was imported")
        self.problems = sorted(problems, key=_line_number)


def _line_number(problem: str) -> int:
    return int(problem.split(":", 1)[0].removeprefix("line "))


class Bad(ValueError):
    """One field's value is wrong; the message says why."""


# --- readers: each takes the JSON value and returns the clean one, or raises Bad ------------------

def text(limit: int) -> Callable:
    def read(value):
        if not isinstance(value, str):
            raise Bad("should be text")
        if len(value) > limit:
            raise Bad(f"is longer than {limit} characters")
        return value.strip()
    return read


def choice(vocabulary) -> Callable:
    def read(value):
        if value not in vocabulary:
            raise Bad(f"{value!r} is not one of {', '.join(vocabulary)}")
        return value
    return read


def day(value) -> date:
    try:
        result = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        result = None
    if result is None:
        raise Bad(f"{value!r} is not a date in YYYY-MM-DD form")
    if result > clock.today():
        raise Bad("is in the future")
    return result


def instant(value) -> datetime:
    # An offset is required: a wall-clock time alone is ambiguous across a DST change.
    try:
        result = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        result = None
    if result is None or result.tzinfo is None:
        raise Bad(f"{value!r} is not a date and time with its UTC offset "
                  "(e.g. 2024-03-05T14:20:00-06:00)")
    result = result.astimezone(UTC)
    if result > clock.now():
        raise Bad("is in the future")
    return result


def flag(value) -> bool:
    if not isinstance(value, bool):
        raise Bad("should be true or false")
    return value


def mapping(value) -> dict:
    if not isinstance(value, dict):
        raise Bad("should be an object of field names and values")
    return value


def ref(kind: str) -> Callable:
    """The id of another record: checked against the file and earlier imports elsewhere."""
    def read(value):
        return source_id(value)
    read.refers_to = kind
    return read


def source_id(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise Bad("should be the record's id in the old system (text or a whole number)")
    if len(str(value)) > MAX_ID:
        raise Bad(f"is longer than {MAX_ID} characters")
    return str(value).strip()


@dataclass(frozen=True)
class Field:
    name: str
    read: Callable
    required: bool = True

    @property
    def refers_to(self) -> str | None:
        return getattr(self.read, "refers_to", None)


def _opt(name: str, read: Callable) -> Field:
    return Field(name, read, required=False)


NOTE = text(4000)
NAME = text(160)

# Every type a line may have, and its fields besides "type" and "id".
TYPES: dict[str, tuple[Field, ...]] = {
    "child": (Field("case_id", text(40)), Field("first_name", text(80)),
              Field("last_name", text(80)), Field("date_of_birth", day), Field("sex", choice(SEXES)),
              Field("county", text(80)), Field("status", choice(STATUSES)),
              Field("status_since", instant), _opt("caseworker", text(80))),
    "placement": (Field("child", ref("child")), Field("setting", choice(PLACEMENT_SETTINGS)),
                  Field("provider_name", NAME), Field("started_on", day), _opt("ended_on", day)),
    "status_change": (Field("child", ref("child")), Field("status", choice(STATUSES)),
                      Field("since", instant), _opt("note", NOTE),
                      _opt("location_address", NOTE), _opt("location_adult", NAME),
                      _opt("location_verified_how", NOTE)),
    "visitation_plan": (Field("child", ref("child")), Field("frequency", choice(VISIT_FREQUENCIES)),
                        Field("with_whom", NAME), Field("adopted_on", day), _opt("ended_on", day)),
    "risk_factor": (Field("child", ref("child")), Field("factor", choice(MISSOURI_KEYS)),
                    Field("present", flag), Field("observed_on", day)),
    "caring_adult_finding": (Field("child", ref("child")), Field("has_caring_adult", flag),
                             Field("found_on", day)),
    "intervention": (Field("child", ref("child")), Field("kind", choice(INTERVENTION_KINDS)),
                     Field("done_on", day), _opt("note", text(2000))),
    "episode": (Field("child", ref("child")), Field("discovered_at", instant),
                Field("discovered_by_role", choice(DISCOVERED_BY)),
                Field("discovered_by_name", NAME), Field("how_missing", choice(HOW_MISSING)),
                _opt("last_seen_at", instant), _opt("last_seen_place", NOTE),
                _opt("located_at", instant), _opt("located_where", choice(LOCATED_WHERE)),
                _opt("located_place", NOTE), _opt("located_by", NAME),
                _opt("returned_at", instant), _opt("end_reason", choice(END_REASONS)),
                _opt("ended_at", instant), _opt("court_order_date", day)),
    "checklist_entry": (Field("episode", ref("episode")), Field("step", text(60)),
                        Field("outcome", choice(OUTCOMES)), Field("done_at", instant),
                        _opt("recorded_at", instant), _opt("recorded_by", text(80)),
                        _opt("evidence", mapping), _opt("reason", NOTE),
                        _opt("supersedes", ref("checklist_entry"))),
    "search_contact": (Field("episode", ref("episode")), Field("purpose", choice(PURPOSES)),
                       Field("person", NAME), Field("relationship", choice(RELATIONSHIPS)),
                       Field("method", choice(METHODS)), Field("contacted_at", instant),
                       Field("reached", flag), _opt("learned", NOTE),
                       _opt("recorded_at", instant), _opt("recorded_by", text(80))),
    "supportive_service": (Field("episode", ref("episode")), Field("service", text(200)),
                           Field("start_date", day), _opt("provider", NAME),
                           _opt("recorded_at", instant), _opt("recorded_by", text(80))),
}


@dataclass
class Record:
    """One line of the file, with its values read and checked."""
    line: int
    kind: str
    source_id: str
    values: dict
    sha256: str
    already_imported: bool = False  # the same record came in an earlier import
    problems: list[str] = field(default_factory=list)

    def get(self, name: str, default=None):
        return self.values.get(name, default)


def read_line(number: int, raw: str) -> Record | list[str]:
    """The record on one line, or the problems that keep it from being one."""
    where = f"line {number}"
    try:
        data = json.loads(raw)
    except ValueError as problem:
        return [f"{where}: not valid JSON ({problem.msg}, column {problem.colno})"]
    if not isinstance(data, dict):
        return [f"{where}: should be one JSON object"]
    kind = data.get("type")
    if kind not in TYPES:
        return [f"{where}: type {kind!r} is not one of {', '.join(TYPES)}"]
    problems, values = [], {}
    try:
        ident = source_id(data.get("id"))
    except Bad as bad:
        problems.append(f"{where}: id {bad}")
        ident = ""
    fields = TYPES[kind]
    known = {f.name for f in fields} | {"type", "id"}
    for name in sorted(set(data) - known):
        problems.append(f"{where}: {kind} has no field {name!r}")
    for f in fields:
        value = data.get(f.name)
        if value is None or value == "":
            if f.required:
                problems.append(f"{where}: {f.name} is required")
            continue
        try:
            values[f.name] = f.read(value)
        except Bad as bad:
            problems.append(f"{where}: {f.name} {bad}")
            continue
        if values[f.name] == "":  # only spaces
            del values[f.name]
            if f.required:
                problems.append(f"{where}: {f.name} is required")
    if problems:
        return problems
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Record(number, kind, ident, values, hashlib.sha256(canonical.encode()).hexdigest())
