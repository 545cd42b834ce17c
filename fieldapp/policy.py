"""Policy versions: the missing and return checklists as installed data (DESIGN §4).

A policy file (TOML) names every step, its anchor, deadline rule, basis, outcomes and evidence
fields. ``load_policy`` validates a file into a ``Policy``; ``install`` stores its text and SHA-256.
An episode points at the installed row in force at its T0 and keeps it, so changing a file later
changes no past episode. A new state or a new law is a new file, not new code.
"""
from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from importlib import resources

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock
from .models import PolicyVersion

BASES = ("law", "policy", "agency_target")
OUTCOMES = ("done", "attempted", "not_applicable")
CHECKLISTS = ("missing", "return")
EVIDENCE_TYPES = ("text", "textarea", "phone", "date", "datetime", "choice", "categories")
DEADLINE_RULES = ("hours", "next_business_day", "monthly")
FIXED_ANCHORS = ("T0", "T1", "T2")
EVENT_KINDS = ("trafficking_identified", "released_while_missing")
# Never "not applicable": the law allows no exception for the two reports (DESIGN §3).
NEVER_NOT_APPLICABLE = ("report_law_enforcement", "report_ncmec")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
PACKAGED = ("missouri-2019.toml", "missouri-2023.toml")


class PolicyInvalid(ValueError):
    """A policy file that cannot be installed; the message names the file and the key."""


@dataclass(frozen=True)
class EvidenceField:
    name: str
    label: str
    type: str
    required: bool
    options: tuple[str, ...] = ()
    options_from: str | None = None


@dataclass(frozen=True)
class Deadline:
    rule: str
    hours: float | None = None
    first_hours: float | None = None


@dataclass(frozen=True)
class Step:
    key: str
    checklist: str
    title: str
    instructions: str
    who: str
    anchor: str
    deadline: Deadline
    basis: str
    legal_basis: str
    outcomes: tuple[str, ...]
    evidence: tuple[EvidenceField, ...]
    attempted_requires: tuple[str, ...] = ()
    contact_log: bool = False
    sensitive: bool = False
    screening: bool = False
    required_after_positive_screen: bool = False

    @property
    def anchor_kind(self) -> str:
        """"clock" (T0/T1/T2), "step" or "event"."""
        return "clock" if self.anchor in FIXED_ANCHORS else self.anchor.split(":", 1)[0]

    @property
    def anchor_target(self) -> str:
        return self.anchor if self.anchor in FIXED_ANCHORS else self.anchor.split(":", 1)[1]

    @property
    def raised_by_event(self) -> str | None:
        """Steps anchored on an information event exist only once that event is recorded."""
        return self.anchor_target if self.anchor_kind == "event" else None


@dataclass(frozen=True)
class Category:
    key: str
    label: str


@dataclass(frozen=True)
class Question:
    key: str
    text: str


@dataclass(frozen=True)
class Screening:
    key: str
    title: str
    demonstration: bool
    notice: str
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class Policy:
    key: str
    title: str
    jurisdiction: str
    effective_from: date
    business_days: tuple[int, ...]
    holidays: tuple[date, ...]
    photo_cadence: dict
    categories: dict[str, tuple[Category, ...]]
    screening: Screening
    steps: tuple[Step, ...] = field(default=())

    def step(self, key: str) -> Step | None:
        return next((s for s in self.steps if s.key == key), None)

    def checklist(self, name: str) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.checklist == name)


# --- validation -----------------------------------------------------------------------------

class _Reader:
    """Reads typed values out of the parsed TOML, naming file and key in every complaint."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, problem: str):
        raise PolicyInvalid(f"{self.source}: {where}: {problem}")

    def get(self, table: dict, key: str, kind, where: str, default=...):
        if not isinstance(table, dict):
            self.fail(where, f"should be a table, not {type(table).__name__}")
        if key not in table:
            if default is ...:
                self.fail(f"{where}.{key}" if where else key, "is missing")
            return default
        value = table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(f"{where}.{key}" if where else key,
                      f"should be {getattr(kind, '__name__', kind)}, not {type(value).__name__}")
        return value

    def text(self, table, key, where, default=...):
        value = self.get(table, key, str, where, default)
        if value is not default and isinstance(value, str) and not value.strip():
            self.fail(f"{where}.{key}" if where else key, "is empty")
        return value


def _evidence(r: _Reader, raw: dict, where: str, categories: dict) -> EvidenceField:
    name = r.text(raw, "name", where)
    kind = r.text(raw, "type", where)
    if kind not in EVIDENCE_TYPES:
        r.fail(f"{where}.type", f"{kind!r} is not one of {', '.join(EVIDENCE_TYPES)}")
    options = tuple(r.get(raw, "options", list, where, []))
    options_from = r.get(raw, "options_from", str, where, None)
    if kind == "choice" and not options:
        r.fail(f"{where}.options", "a choice field needs options")
    if kind == "categories" and options_from not in categories:
        r.fail(f"{where}.options_from", f"should name one of {', '.join(categories)}")
    return EvidenceField(name=name, label=r.text(raw, "label", where), type=kind,
                         required=r.get(raw, "required", bool, where), options=options,
                         options_from=options_from)


def _deadline(r: _Reader, raw: dict, where: str) -> Deadline:
    rule = r.text(raw, "rule", where)
    if rule not in DEADLINE_RULES:
        r.fail(f"{where}.rule", f"{rule!r} is not one of {', '.join(DEADLINE_RULES)}")
    if rule in ("hours", "monthly"):
        name = "hours" if rule == "hours" else "first_hours"
        hours = r.get(raw, name, float, where)
        if not (hours > 0 and math.isfinite(hours)):
            r.fail(f"{where}.{name}", "must be more than 0")
        return Deadline(rule, hours=hours) if rule == "hours" else Deadline(rule, first_hours=hours)
    return Deadline(rule)


def _step(r: _Reader, raw: dict, index: int, categories: dict, keys: list[str]) -> Step:
    where = f"steps[{index}]"
    key = r.text(raw, "key", where)
    where = f"steps[{index}] ({key})"
    checklist = r.text(raw, "checklist", where)
    if checklist not in CHECKLISTS:
        r.fail(f"{where}.checklist", f"{checklist!r} is not one of {', '.join(CHECKLISTS)}")
    anchor = r.text(raw, "anchor", where)
    if anchor not in FIXED_ANCHORS:
        kind, _, target = anchor.partition(":")
        if (kind == "event" and target not in EVENT_KINDS) or (kind == "step" and target not in keys) \
                or kind not in ("event", "step"):
            r.fail(f"{where}.anchor", f"{anchor!r} is not T0, T1, T2, step:<an earlier step> or "
                                      f"event:<{'|'.join(EVENT_KINDS)}>")
    basis = r.text(raw, "basis", where)
    if basis not in BASES:
        r.fail(f"{where}.basis", f"{basis!r} is not one of {', '.join(BASES)}")
    outcomes = tuple(r.get(raw, "outcomes", list, where))
    bad = [o for o in outcomes if o not in OUTCOMES]
    if bad or not outcomes or "done" not in outcomes:
        r.fail(f"{where}.outcomes", f"must include 'done' and only {', '.join(OUTCOMES)}")
    if key in NEVER_NOT_APPLICABLE and "not_applicable" in outcomes:
        r.fail(f"{where}.outcomes", "the law-enforcement and NCMEC reports are never 'not_applicable'")
    evidence = tuple(_evidence(r, e, f"{where}.evidence[{i}]", categories)
                     for i, e in enumerate(r.get(raw, "evidence", list, where)))
    names = [e.name for e in evidence]
    if len(set(names)) != len(names):
        r.fail(f"{where}.evidence", "field names repeat")
    attempted_requires = tuple(r.get(raw, "attempted_requires", list, where, []))
    unknown = [n for n in attempted_requires if n not in names]
    if unknown:
        r.fail(f"{where}.attempted_requires", f"names no evidence field: {', '.join(unknown)}")
    return Step(
        key=key, checklist=checklist, title=r.text(raw, "title", where),
        instructions=r.text(raw, "instructions", where), who=r.text(raw, "who", where),
        anchor=anchor, deadline=_deadline(r, r.get(raw, "deadline", dict, where), f"{where}.deadline"),
        basis=basis, legal_basis=r.text(raw, "legal_basis", where), outcomes=outcomes,
        evidence=evidence, attempted_requires=attempted_requires,
        contact_log=r.get(raw, "contact_log", bool, where, False),
        sensitive=r.get(raw, "sensitive", bool, where, False),
        screening=r.get(raw, "screening", bool, where, False),
        required_after_positive_screen=r.get(raw, "required_after_positive_screen", bool, where, False))


def parse_policy(text: str, source: str) -> Policy:
    """Validate a policy file's text; raise PolicyInvalid naming ``source`` and the bad key."""
    r = _Reader(source)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyInvalid(f"{source}: not valid TOML: {exc}") from None
    effective = r.get(raw, "effective_from", date, "")
    if isinstance(effective, datetime):
        r.fail("effective_from", "should be a date, not a date and time")
    days = r.get(raw, "business_days", list, "")
    if not days or any(d not in WEEKDAYS for d in days):
        r.fail("business_days", f"should list days from {', '.join(WEEKDAYS)}")
    holidays = r.get(raw, "holidays", list, "", [])
    if any(not isinstance(h, date) or isinstance(h, datetime) for h in holidays):
        r.fail("holidays", "should list dates (without a time)")
    categories_raw = r.get(raw, "categories", dict, "")
    categories = {}
    for name in ("factors", "experiences"):
        items = r.get(categories_raw, name, list, "categories")
        categories[name] = tuple(Category(r.text(c, "key", f"categories.{name}[{i}]"),
                                          r.text(c, "label", f"categories.{name}[{i}]"))
                                 for i, c in enumerate(items))
    screening_raw = r.get(raw, "screening", dict, "")
    questions = tuple(Question(r.text(q, "key", f"screening.questions[{i}]"),
                               r.text(q, "text", f"screening.questions[{i}]"))
                      for i, q in enumerate(r.get(screening_raw, "questions", list, "screening")))
    if not questions:
        r.fail("screening.questions", "the instrument needs at least one question")
    screening = Screening(r.text(screening_raw, "key", "screening"),
                          r.text(screening_raw, "title", "screening"),
                          r.get(screening_raw, "demonstration", bool, "screening"),
                          r.get(screening_raw, "notice", str, "screening", ""), questions)
    cadence = r.get(raw, "photo_cadence", dict, "")
    for name in ("up_to_age", "months_up_to_age", "months_after"):
        r.get(cadence, name, int, "photo_cadence")
    steps_raw = r.get(raw, "steps", list, "")
    steps, keys = [], []
    for index, step_raw in enumerate(steps_raw):
        if not isinstance(step_raw, dict):
            r.fail(f"steps[{index}]", "should be a table")
        step = _step(r, step_raw, index, categories, keys)
        if step.key in keys:
            r.fail(f"steps[{index}].key", f"{step.key!r} repeats")
        keys.append(step.key)
        steps.append(step)
    for required in NEVER_NOT_APPLICABLE:
        if required not in keys:
            r.fail("steps", f"the {required} step is required in every policy")
    for name, limit in (("key", 80), ("title", 200)):
        if len(r.text(raw, name, "")) > limit:
            r.fail(name, f"is longer than {limit} characters")
    return Policy(key=r.text(raw, "key", ""), title=r.text(raw, "title", ""),
                  jurisdiction=r.text(raw, "jurisdiction", ""), effective_from=effective,
                  business_days=tuple(WEEKDAYS.index(d) for d in days), holidays=tuple(holidays),
                  photo_cadence=dict(cadence), categories=categories, screening=screening,
                  steps=tuple(steps))


# --- installed versions ---------------------------------------------------------------------

def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=64)
def _parse_cached(digest: str, text: str) -> Policy:
    return parse_policy(text, f"installed policy {digest[:12]}")


def policy_of(version: PolicyVersion) -> Policy:
    """The parsed policy of an installed row (cached by content hash: the text never changes)."""
    return _parse_cached(version.sha256, version.content)


def install(db_session: Session, text: str, source: str) -> tuple[PolicyVersion, bool]:
    """Validate and store a policy. Returns (row, created). The same content again is a no-op;
    a different file under an existing key is refused, because episodes keep the old one."""
    policy = parse_policy(text, source)
    digest = sha256(text)
    existing = db_session.scalar(select(PolicyVersion).where(PolicyVersion.key == policy.key))
    if existing is not None:
        if existing.sha256 == digest:
            return existing, False
        raise PolicyInvalid(f"{source}: key: {policy.key!r} is installed already with other "
                            "content; give a changed policy a new key")
    row = PolicyVersion(key=policy.key, title=policy.title, effective_from=policy.effective_from,
                        content=text, sha256=digest, installed_at=clock.now())
    db_session.add(row)
    db_session.flush()
    return row, True


def packaged_texts() -> list[tuple[str, str]]:
    folder = resources.files("fieldapp") / "policies"
    return [(name, (folder / name).read_text(encoding="utf-8")) for name in PACKAGED]


def install_packaged(db_session: Session) -> list[PolicyVersion]:
    return [install(db_session, text, name)[0] for name, text in packaged_texts()]


def in_force_at(db_session: Session, at: datetime) -> PolicyVersion | None:
    """The installed policy in force at an instant: the latest effective_from on or before its
    date in the agency's zone."""
    day = at.astimezone(clock.agency_zone()).date()
    return db_session.scalar(select(PolicyVersion).where(PolicyVersion.effective_from <= day)
                             .order_by(PolicyVersion.effective_from.desc(), PolicyVersion.id.desc())
                             .limit(1))
