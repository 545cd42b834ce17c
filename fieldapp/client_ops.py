"""Exactly-once writes keyed by a client-made UUID, for every kind of write (DESIGN §8).

The page's script makes a fresh UUID at each submit (the server makes one when there is no
script). ``claim`` inserts the UUID with ON CONFLICT DO NOTHING *before* the write, so of two
concurrent replays exactly one proceeds; the other finds the row and gets the stored answer, or a
refusal when the same UUID arrives with different content.
"""
from __future__ import annotations

import hashlib
import json
import uuid as uuid_module
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from . import clock
from .models import ClientOp, User


class OpConflict(ValueError):
    """The UUID was used before for something else; the message is for the user."""


@dataclass(frozen=True)
class Claim:
    new: bool
    response: dict | None  # the stored answer, for a duplicate


def valid_uuid(value: str | None) -> str | None:
    try:
        return str(uuid_module.UUID(value or ""))
    except ValueError:
        return None


def content_hash(kind: str, fields: dict) -> str:
    canonical = json.dumps({"kind": kind, "fields": fields}, sort_keys=True, default=str,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim(db_session: Session, op_uuid: str, user: User, kind: str, fields: dict) -> Claim:
    """Reserve ``op_uuid`` for this write, inside the write's transaction."""
    digest = content_hash(kind, fields)
    dialect = db_session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(ClientOp)
    # SQLAlchemy reports an INSERT's rowcount (1 inserted, 0 on conflict) only when asked to;
    # without this it is -1 on psycopg, and every claim would look like a replay.
    result = db_session.execute(insert.values(
        uuid=op_uuid, user_id=user.id, kind=kind, content_hash=digest, response="{}",
        created_at=clock.now()).on_conflict_do_nothing(index_elements=["uuid"])
        .execution_options(preserve_rowcount=True))
    if result.rowcount == 1:
        return Claim(new=True, response=None)
    existing = db_session.scalar(select(ClientOp).where(ClientOp.uuid == op_uuid))
    if existing.user_id != user.id or existing.kind != kind or existing.content_hash != digest:
        raise OpConflict("This submission's id was already used for different content. Nothing "
                         "was saved; reload the page and enter it again.")
    return Claim(new=False, response=json.loads(existing.response))


def store_response(db_session: Session, op_uuid: str, response: dict) -> None:
    db_session.execute(update(ClientOp).where(ClientOp.uuid == op_uuid)
                       .values(response=json.dumps(response, sort_keys=True)))
