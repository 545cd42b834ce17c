"""The audit log: one event per write, appended inside the write's own transaction, hash-chained.

Events hold the changed fields only; free text about a child and blobs are stored as an
HMAC-SHA256 under the audit key (``fingerprint``) so that the log never becomes a second copy of
the case file, nor a list of hashes to match guessed names against.

The chain (DESIGN §7). Every event has a gapless ``seq`` and an HMAC-SHA256 over the canonical JSON
of its fields and the previous event's HMAC, keyed by FIELDAPP_AUDIT_KEY, which is never stored in
the database: a database writer alone cannot rebuild the chain after changing it. The one
``audit_head`` row holds the last seq and HMAC. An append locks it (``SELECT … FOR UPDATE`` on
PostgreSQL; on SQLite the ``BEGIN IMMEDIATE`` of ``db.writing()`` already holds the write lock), so
concurrent writers take turns and a rolled-back write takes its seq with it. ``verify_chain`` walks
the chain and names the first broken link.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Engine, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, joinedload

from . import clock
from .models import AuditEvent, AuditHead, User

HEAD_ID = 1
GENESIS = "0" * 64  # the "previous HMAC" of the first event
# Debug and tests only (settings.check refuses to start without a real key otherwise). It is
# fixed rather than random so that a development database still verifies after a restart.
DEVELOPMENT_KEY = "fieldapp-development-audit-key-not-secret"
EVENTS_PER_PAGE = 50


def fingerprint(value: str | bytes) -> str:
    """What the log keeps of a sensitive value or a blob: its HMAC-SHA256 under the audit key.

    A plain SHA-256 of a name or a short note is no secret: anyone can hash guesses ("Dana
    Reyes", a birth date) and match them. Keyed, only the holder of the audit key can check a
    value against the log. (Events from before this kept "sha256:" values; they still verify.)
    """
    data = value if isinstance(value, bytes) else value.encode()
    return "hmac-sha256:" + hmac.new(audit_key(), data, hashlib.sha256).hexdigest()


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical(value):
    if isinstance(value, datetime):
        return _utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return fingerprint(bytes(value))  # blobs are never copied into the log
    return value


def audit_key() -> bytes:
    """The HMAC key of the running app. In debug and tests without one, the development key.

    settings.check has already refused to start anything else without a key. (The debug flag
    is not asked again here: Flask's CLI resets it from FLASK_DEBUG after the factory ran.)
    """
    return (current_app.config.get("AUDIT_KEY") or DEVELOPMENT_KEY).encode()


def link_hash(key: bytes, event: Any, previous: str, *, seq: int | None = None) -> str:
    """The HMAC-SHA256 that chains ``event`` (an AuditEvent or a row with its columns) to the
    event before it, whose HMAC is ``previous``. ``seq`` overrides the event's own, to test where
    an event would fit."""
    message = {
        "seq": event.seq if seq is None else seq,
        "at": _utc_text(event.at),
        "actor_id": event.actor_id,
        "action": event.action,
        "entity": event.entity,
        "entity_id": event.entity_id,
        "child_id": event.child_id,
        "details": event.details,
        "previous": previous,
    }
    canonical = json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def record_event(db_session: Session, actor: User | None, action: str, entity: str,
                 entity_id: object = None, *, child_id: int | None = None,
                 changes: dict | None = None, sensitive: dict | None = None) -> AuditEvent:
    """Append an event to the chain, in ``db_session``'s open write transaction.

    ``sensitive`` values are stored as hashes, never as themselves; so are ``bytes`` in ``changes``.
    Do slow work before calling this: the head row stays locked until the transaction ends.
    """
    details = {k: _canonical(v) for k, v in (changes or {}).items()}
    details.update({k: fingerprint(str(v)) for k, v in (sensitive or {}).items() if v})
    event = AuditEvent(at=clock.now(), actor_id=actor.id if actor else None, action=action,
                       entity=entity, entity_id=None if entity_id is None else str(entity_id),
                       child_id=child_id, details=json.dumps(details, sort_keys=True))
    last_seq, last_hash = db_session.info.get(_HEAD_HELD) or _lock_head(db_session)
    event.seq = last_seq + 1
    event.hash = link_hash(audit_key(), event, last_hash)
    db_session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID)
                       .values(last_seq=event.seq, last_hash=event.hash))
    db_session.add(event)
    db_session.info[_HEAD_HELD] = (event.seq, event.hash)
    return event


# The head as this transaction last wrote it. Once the head is locked, it stays locked until the
# transaction ends (PostgreSQL keeps a row lock taken inside a released savepoint; SQLite's
# BEGIN IMMEDIATE holds the whole file), so no other writer can move it: a batch of many events
# (a phone's sync) reads it once. Any rollback, a savepoint's included, may have undone the
# head's update, and the end of the transaction gives the lock up: both forget it.
_HEAD_HELD = "fieldapp.audit.head_held"


@sa_event.listens_for(Session, "after_soft_rollback")
def _forget_head_after_rollback(db_session: Session, _previous) -> None:
    db_session.info.pop(_HEAD_HELD, None)


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_head_at_the_end(db_session: Session, transaction) -> None:
    if transaction.parent is None:
        db_session.info.pop(_HEAD_HELD, None)


def _lock_head(db_session: Session) -> tuple[int, str]:
    # Pending changes are flushed first (autoflush), so the lock is taken as late as possible.
    head = db_session.execute(select(AuditHead.last_seq, AuditHead.last_hash)
                              .where(AuditHead.id == HEAD_ID).with_for_update()).one_or_none()
    if head is None:
        raise RuntimeError("The audit_head row is missing: the database is not migrated, or the "
                           "audit log was tampered with (run `fieldapp verify-audit`).")
    return head.last_seq, head.last_hash


# --- Verifying the chain ---------------------------------------------------------------------

@dataclass(frozen=True)
class ChainReport:
    """What ``verify_chain`` found: ``count`` events verified, and the first broken link if any."""

    count: int
    broken_seq: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_seq is None

    def __str__(self) -> str:
        if self.intact:
            return f"audit chain intact: {self.count} events"
        return f"audit chain broken at seq {self.broken_seq}: {self.reason}"


_CHAINED_COLUMNS = (AuditEvent.seq, AuditEvent.at, AuditEvent.actor_id, AuditEvent.action,
                    AuditEvent.entity, AuditEvent.entity_id, AuditEvent.child_id,
                    AuditEvent.details, AuditEvent.hash)


def verify_chain(engine: Engine, key: bytes) -> ChainReport:
    """Walk the chain in seq order, recomputing each HMAC, then compare its end with the head row.

    It reads one snapshot (REPEATABLE READ on PostgreSQL, one read transaction on SQLite), so
    writers carry on meanwhile without being mistaken for tampering.
    """
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect().execution_options(**options) as conn:
        head = conn.execute(select(AuditHead.last_seq, AuditHead.last_hash)
                            .where(AuditHead.id == HEAD_ID)).one_or_none()
        rows = conn.execute(select(*_CHAINED_COLUMNS).order_by(AuditEvent.seq)
                            .execution_options(yield_per=1000))
        return _walk(key, iter(rows), head)


def _walk(key: bytes, rows, head) -> ChainReport:
    expected, previous = 1, GENESIS
    current = next(rows, None)
    while current is not None:
        following = next(rows, None)
        if current.seq > expected:
            return ChainReport(expected - 1, expected, f"missing: deleted (the log jumps from seq "
                                                       f"{expected - 1} to seq {current.seq})")
        if current.seq < expected:
            return ChainReport(expected - 1, current.seq,
                               "inserted: a seq that the chain had already passed")
        if not hmac.compare_digest(link_hash(key, current, previous), current.hash):
            return ChainReport(expected - 1, current.seq,
                               _why_broken(key, current, following, previous, head))
        previous, expected, current = current.hash, expected + 1, following
    last = expected - 1
    if head is None:
        return ChainReport(last, last, "head mismatch: the audit_head row is missing")
    if head.last_seq > last:
        return ChainReport(last, last + 1, f"missing: deleted from the end (the head row records "
                                           f"seq {head.last_seq}, the log ends at seq {last})")
    if head.last_seq != last or head.last_hash != previous:
        return ChainReport(last, last, f"head mismatch: the head row records seq {head.last_seq} "
                                       f"with another HMAC than the log's last event (seq {last})")
    return ChainReport(last)


def _why_broken(key: bytes, row, following, previous: str, head) -> str:
    """Tell an edited event from an inserted one, or from a deletion hidden by renumbering."""
    if head is not None and row.seq > head.last_seq:
        return f"inserted: beyond the head row, which records seq {head.last_seq}"
    if following is not None:
        if hmac.compare_digest(link_hash(key, following, previous, seq=row.seq), following.hash):
            return "inserted: the events after it verify only without it"
        if hmac.compare_digest(link_hash(key, following, row.hash, seq=following.seq + 1),
                               following.hash):
            return "missing: an event was deleted here and the later ones renumbered"
    return "edited: its contents no longer match its HMAC"


# --- Browsing the log ------------------------------------------------------------------------

@dataclass(frozen=True)
class EventFilter:
    """Which events an administrator asked for. Dates are the agency's, both ends included."""

    child_id: int | None = None
    actor_id: int | None = None
    start: date | None = None
    end: date | None = None

    def as_args(self) -> dict[str, str]:
        """The filter as the page's GET parameters, for links to other pages of it."""
        args = {"child": self.child_id, "user": self.actor_id, "from": self.start, "to": self.end}
        return {name: str(value) for name, value in args.items() if value is not None}


def find_events(db_session: Session, wanted: EventFilter,
                page: int = 1) -> tuple[list[AuditEvent], bool]:
    """One page of matching events, newest first, and whether older ones follow."""
    query = select(AuditEvent).options(joinedload(AuditEvent.actor)).order_by(AuditEvent.seq.desc())
    if wanted.child_id is not None:
        query = query.where(AuditEvent.child_id == wanted.child_id)
    if wanted.actor_id is not None:
        query = query.where(AuditEvent.actor_id == wanted.actor_id)
    if wanted.start is not None:
        query = query.where(AuditEvent.at >= clock.local_midnight(wanted.start))
    if wanted.end is not None:
        query = query.where(AuditEvent.at < clock.local_midnight(wanted.end + timedelta(days=1)))
    found = db_session.scalars(query.offset((page - 1) * EVENTS_PER_PAGE)
                               .limit(EVENTS_PER_PAGE + 1)).all()
    return list(found[:EVENTS_PER_PAGE]), len(found) > EVENTS_PER_PAGE


def detail_lines(details: str) -> list[tuple[str, str]]:
    """An event's changed fields as (name, text) pairs, for showing as plain text."""
    try:
        fields = json.loads(details)
    except ValueError:
        return [("details", details)]
    if not isinstance(fields, dict):
        return [("details", details)]
    return [(name, value if isinstance(value, str) else json.dumps(value))
            for name, value in sorted(fields.items())]
