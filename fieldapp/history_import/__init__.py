"""History import: past records an agency moves over from its old system (issue 6, part 4).

The file is JSON Lines, one record a line, each with a ``type`` and the ``id`` the old system
gave it (docs/import-format.md). ``read_file`` checks every line first and raises
``HistoryInvalid`` listing every bad line by number; ``import_history`` then writes the records
in the caller's one write transaction, and raises ``HistoryInvalid`` (so that the transaction
rolls back) if the database refuses any of them. Each record is keyed on (type, id) in
``import_keys``: a record imported before is skipped, so importing the same file again changes
nothing, and a later file may refer to an earlier one's records.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit import record_event
from ..models import Child, ImportKey, PolicyVersion, User
from ..policy import in_force_at
from .checks import record_problems
from .records import MAX_LINES, TYPES, HistoryInvalid, Record, read_line
from .writer import Writer

CHUNK = 500  # ids per IN (...) query: well under both databases' parameter limits


@dataclass
class ImportReport:
    added: Counter = field(default_factory=Counter)
    already: int = 0  # records imported before, skipped
    linked: int = 0  # child records matched to a child already in fieldapp by case_id
    sha256: str = ""

    @property
    def summary(self) -> str:
        kinds = ", ".join(_count(self.added[kind], kind) for kind in TYPES if self.added[kind])
        added = sum(self.added.values())
        return (f"{added} record{'' if added == 1 else 's'} added"
                + (f" ({kinds})" if kinds else "")
                + f", {self.already} already imported"
                + (f", {self.linked} child{'' if self.linked == 1 else 'ren'} matched by case id"
                   if self.linked else ""))


PLURALS = {"child": "children", "checklist_entry": "checklist entries"}


def _count(n: int, kind: str) -> str:
    return f"{n} " + (kind if n == 1 else PLURALS.get(kind, kind + "s")).replace("_", " ")


def _lines(raw: bytes) -> list[tuple[int, str]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as bad:
        line = bad.object[:bad.start].count(b"\n") + 1
        raise HistoryInvalid([f"line {line}: the file is not UTF-8 text"]) from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise HistoryInvalid(["line 1: the file has no records"])
    if len(lines) > MAX_LINES:
        raise HistoryInvalid([f"line {lines[MAX_LINES][0]}: the file has more than {MAX_LINES} "
                              "records; split it"])
    return lines


def _in_chunks(values: list) -> list[list]:
    return [values[i:i + CHUNK] for i in range(0, len(values), CHUNK)]


def _known_keys(db_session: Session, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], ImportKey]:
    found = {}
    for kind in {k for k, _ in wanted}:
        ids = sorted(i for k, i in wanted if k == kind)
        for chunk in _in_chunks(ids):
            for row in db_session.scalars(select(ImportKey).where(ImportKey.kind == kind,
                                                                  ImportKey.source_id.in_(chunk))):
                found[(kind, row.source_id)] = row
    return found


def _check_references(db_session: Session, records: list[Record], problems: list[str]) -> None:
    """Each reference names a record above it in the file or one imported before; a record
    imported before with other content is refused, because a re-import never edits history."""
    wanted = {(r.kind, r.source_id) for r in records}
    for r in records:
        wanted |= {(f.refers_to, r.get(f.name)) for f in TYPES[r.kind] if f.refers_to and r.get(f.name)}
    known = _known_keys(db_session, wanted)
    seen: dict[tuple[str, str], Record] = {}
    for r in records:
        key = (r.kind, r.source_id)
        if key in seen:
            r.problems.append(f"line {r.line}: {r.kind} {r.source_id!r} repeats line {seen[key].line}")
            continue
        if key in known:
            if known[key].content_sha256 != r.sha256:
                r.problems.append(f"line {r.line}: {r.kind} {r.source_id!r} was imported before "
                                  "with other content; a re-import does not change history")
            r.already_imported = True
        for f in TYPES[r.kind]:
            target = (f.refers_to, r.get(f.name)) if f.refers_to and r.get(f.name) else None
            if target and target not in seen and target not in known:
                r.problems.append(f"line {r.line}: {f.name} {target[1]!r} names no "
                                  f"{target[0].replace('_', ' ')} above this line, nor one "
                                  "imported before")
        seen[key] = r  # after its references: a record cannot refer to itself
    problems += [p for r in records for p in r.problems]


def _check_children(db_session: Session, records: list[Record], problems: list[str]) -> None:
    children = [r for r in records if r.kind == "child" and not r.already_imported]
    by_case: dict[str, Record] = {}
    for r in children:
        if r.get("case_id") in by_case:
            problems.append(f"line {r.line}: case_id {r.get('case_id')} repeats line "
                            f"{by_case[r.get('case_id')].line}")
        by_case.setdefault(r.get("case_id"), r)
    for chunk in _in_chunks(sorted(by_case)):
        for child_id, case_id in db_session.execute(select(Child.id, Child.case_id)
                                                    .where(Child.case_id.in_(chunk))):
            taken = db_session.scalar(select(ImportKey.source_id).where(
                ImportKey.kind == "child", ImportKey.local_id == child_id))
            if taken is not None:
                problems.append(f"line {by_case[case_id].line}: case_id {case_id} was imported "
                                f"before as child {taken!r}")
    caseworkers = {r.get("caseworker").lower() for r in children if r.get("caseworker")}
    active = set(db_session.scalars(select(User.username).where(
        User.username.in_(caseworkers), User.role == "caseworker", User.active))) if caseworkers else set()
    problems += [f"line {r.line}: caseworker {r.get('caseworker')!r} is not an active caseworker"
                 for r in children if r.get("caseworker") and r.get("caseworker").lower() not in active]


def _check_people(db_session: Session, records: list[Record], problems: list[str]) -> None:
    names = {r.get("recorded_by").lower() for r in records if r.get("recorded_by")}
    users = set(db_session.scalars(select(User.username).where(User.username.in_(names)))) if names else set()
    problems += [f"line {r.line}: recorded_by {r.get('recorded_by')!r} is not a fieldapp user"
                 for r in records if r.get("recorded_by") and r.get("recorded_by").lower() not in users]


def _check_policies(db_session: Session, records: list[Record], problems: list[str]) -> None:
    """Each episode takes the policy in force at its T0; before the earliest one there is no
    checklist and no deadline to measure it by, so the episode is refused."""
    earliest = db_session.scalar(select(PolicyVersion).order_by(PolicyVersion.effective_from,
                                                                 PolicyVersion.id).limit(1))
    floor = (f"the earliest installed policy, {earliest.key}, is in force from "
             f"{earliest.effective_from}" if earliest else "no policy is installed")
    for r in records:
        if r.kind == "episode" and not r.already_imported and \
                in_force_at(db_session, r.get("discovered_at")) is None:
            problems.append(f"line {r.line}: discovered_at {r.get('discovered_at').isoformat()} is "
                            f"before any installed policy ({floor}); install the policy that was "
                            "in force then, or leave this episode out")


def read_file(db_session: Session, raw: bytes) -> list[Record]:
    """Every record of the file, checked against the format and the database; raises
    HistoryInvalid listing every bad line. Writes nothing."""
    problems: list[str] = []
    records: list[Record] = []
    for number, line in _lines(raw):
        result = read_line(number, line)
        if isinstance(result, list):
            problems += result
            continue
        found = record_problems(result)
        if found:
            problems += found
            continue
        records.append(result)
    _check_references(db_session, records, problems)
    _check_children(db_session, records, problems)
    _check_people(db_session, records, problems)
    _check_policies(db_session, records, problems)
    if problems:
        raise HistoryInvalid(problems)
    return records


def import_history(db_session: Session, records: list[Record], actor: User | None, *,
                   sha256: str = "", progress: Callable[[int], None] | None = None) -> ImportReport:
    """Write the checked records; call inside one ``db.writing()`` block, after ``read_file``.
    Raises HistoryInvalid (rolling the block back) if any record is refused."""
    report = ImportReport(sha256=sha256)
    writer = Writer(db_session, actor)
    writer.write_all(records, progress)
    report.added, report.linked = writer.added, writer.linked
    report.already = sum(1 for r in records if r.already_imported)
    record_event(db_session, actor, "history.import", "import", None,
                 changes={"sha256": sha256, "added": dict(report.added), "already": report.already,
                          "linked": report.linked})
    return report


def import_file(db_session: Session, raw: bytes, actor: User | None,
                progress: Callable[[int], None] | None = None) -> ImportReport:
    """Check, then write, a whole file in the caller's write transaction."""
    records = read_file(db_session, raw)
    return import_history(db_session, records, actor, sha256=hashlib.sha256(raw).hexdigest(),
                          progress=progress)
