"""The audit log: one event per write, appended inside the write's own transaction.

Events hold the changed fields only; free text about a child is stored as a SHA-256 so that the log
never becomes a second copy of the case file.
"""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime

from sqlalchemy.orm import Session

from . import clock
from .models import AuditEvent, User


def fingerprint(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def _canonical(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def record_event(db_session: Session, actor: User | None, action: str, entity: str,
                 entity_id: object = None, *, child_id: int | None = None,
                 changes: dict | None = None, sensitive: dict | None = None) -> AuditEvent:
    """Append an event. ``sensitive`` values are stored as hashes, never as themselves."""
    details = {k: _canonical(v) for k, v in (changes or {}).items()}
    details.update({k: fingerprint(str(v)) for k, v in (sensitive or {}).items() if v})
    event = AuditEvent(at=clock.now(), actor_id=actor.id if actor else None, action=action,
                       entity=entity, entity_id=None if entity_id is None else str(entity_id),
                       child_id=child_id, details=json.dumps(details, sort_keys=True))
    db_session.add(event)
    return event
