"""Applying a phone's outbox: one batch of structured operations, each exactly once (DESIGN §8).

``apply_batch`` knows nothing of requests. The caller opens one ``db.writing()`` transaction; each
operation then runs in its own savepoint, so a bad one is rolled back alone and never blocks the
rest. Every operation gets an answer:

- ``applied``: stored now;
- ``duplicate``: its UUID was stored before with the same content; the stored answer comes back;
- ``conflict``: its UUID was used for different content, or the case is no longer the user's;
- ``rejected``: invalid (with the field errors), malformed, of an unknown kind, or not found.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden, NotFound

from . import access, clock
from .checklists import EntryInvalid, record_item, view_of
from .client_ops import OpConflict, valid_uuid
from .contacts import log_contact
from .episodes import EpisodeInvalid
from .models import ClientOp, EpisodeStep, SearchContact, StepEntry, User

MAX_OPS = 500
KINDS = ("step_entry", "search_contact")


class BatchInvalid(ValueError):
    """The batch as a whole cannot be read; nothing was applied. ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class _Rejected(Exception):
    def __init__(self, reason: str, errors: dict | None = None):
        super().__init__(reason)
        self.reason = reason
        self.errors = errors


def parse_instant(value) -> datetime | None:
    """An ISO 8601 instant with its zone, in UTC; None when it is not one (naive included)."""
    if not isinstance(value, str):
        return None
    try:
        instant = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return instant.astimezone(UTC) if instant.tzinfo is not None else None


def check_batch(batch) -> tuple[datetime | None, list]:
    """The device clock and the ops of a batch, or BatchInvalid."""
    if not isinstance(batch, dict):
        raise BatchInvalid("The body must be a JSON object.")
    ops = batch.get("ops")
    if not isinstance(ops, list):
        raise BatchInvalid("'ops' must be a list.")
    if len(ops) > MAX_OPS:
        raise BatchInvalid(f"At most {MAX_OPS} operations per batch; send the rest in another.",
                           status=413)
    held = batch.get("held")
    if held is not None and (isinstance(held, bool) or not isinstance(held, int) or held < 0):
        raise BatchInvalid("'held' must be a whole number.")
    device_time = None
    if batch.get("device_time") is not None:
        device_time = parse_instant(batch["device_time"])
        if device_time is None:
            raise BatchInvalid("'device_time' must be an ISO 8601 time with its zone.")
    return device_time, ops


def apply_batch(db_session: Session, user: User, batch, now: datetime) -> dict:
    """Apply every op of ``batch`` for ``user``; call inside ``db.writing()``.

    Returns {"clock_skew": bool, "results": [{"uuid", "status", "reason"?, "errors"?,
    "response"?}, ...]} in the order of the ops. Raises BatchInvalid for an unreadable batch.
    """
    device_time, ops = check_batch(batch)
    skew = clock.skewed(device_time, now)
    results = [_apply_op(db_session, user, op, skew) for op in ops]
    return {"clock_skew": skew, "results": results}


def _apply_op(db_session: Session, user: User, op, skew: bool) -> dict:
    op_uuid = op.get("uuid") if isinstance(op, dict) else None
    result: dict = {"uuid": op_uuid if isinstance(op_uuid, str) else None}
    try:
        kind, checked_uuid, episode_id, arguments = _check_op(op)
        result["uuid"] = checked_uuid
        with db_session.begin_nested():
            result.update(_run(db_session, user, kind, checked_uuid, episode_id, arguments, skew))
    except _Rejected as rejected:
        result.update(status="rejected", reason=rejected.reason)
        if rejected.errors:
            result["errors"] = rejected.errors
    except (EntryInvalid, EpisodeInvalid) as invalid:
        result.update(status="rejected", reason="invalid", errors=invalid.errors)
    except OpConflict as conflict:
        result.update(status="conflict", reason=str(conflict))
    except _Conflict as conflict:
        result.update(status="conflict", reason=str(conflict))
    except _Duplicate as duplicate:
        result.update(status="duplicate", response=duplicate.response)
    return result


class _Conflict(Exception):
    pass


def _text(fields: dict, name: str) -> str:
    value = fields.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Rejected("malformed", {name: "This must be text."})
    return value


def _instant(fields: dict, name: str) -> datetime | None:
    value = fields.get(name)
    if value in (None, ""):
        return None
    instant = parse_instant(value)
    if instant is None:
        raise _Rejected("malformed", {name: "Give an ISO 8601 date and time with its zone."})
    return instant


def _check_op(op) -> tuple[str, str, int, dict]:
    """The kind, UUID, episode id and keyword arguments of one op, or _Rejected."""
    if not isinstance(op, dict):
        raise _Rejected("malformed")
    op_uuid = valid_uuid(op.get("uuid")) if isinstance(op.get("uuid"), str) else None
    if op_uuid is None:
        raise _Rejected("malformed", {"uuid": "Each operation needs a UUID."})
    kind = op.get("kind")
    if kind not in KINDS:
        raise _Rejected("unknown kind")
    episode_id = op.get("episode_id")
    if isinstance(episode_id, bool) or not isinstance(episode_id, int):
        raise _Rejected("malformed", {"episode_id": "Each operation needs its episode's id."})
    fields = op.get("fields")
    if not isinstance(fields, dict):
        raise _Rejected("malformed", {"fields": "Each operation needs its fields."})
    recorded_at = _instant(op, "recorded_at")
    if kind == "step_entry":
        step_key = op.get("step_key")
        if not isinstance(step_key, str) or not step_key:
            raise _Rejected("malformed", {"step_key": "A step entry needs its step."})
        evidence = fields.get("evidence") or {}
        supersedes = fields.get("supersedes")
        if not isinstance(evidence, dict):
            raise _Rejected("malformed", {"evidence": "The evidence must be an object."})
        if supersedes is not None and (isinstance(supersedes, bool) or not isinstance(supersedes, int)):
            raise _Rejected("malformed", {"supersedes": "This must be an entry's id."})
        arguments = {"step_key": step_key, "outcome": _text(fields, "outcome"),
                     "done_at": _instant(fields, "done_at"), "recorded_at": recorded_at,
                     "raw_evidence": evidence, "reason": _text(fields, "reason"),
                     "supersedes_id": supersedes}
    else:
        reached = fields.get("reached", "")
        if isinstance(reached, bool):
            reached = "reached" if reached else "attempt"
        elif not isinstance(reached, str):
            raise _Rejected("malformed", {"reached": "Say 'reached' or 'attempt'."})
        arguments = {"purpose": _text(fields, "purpose"), "person": _text(fields, "person"),
                     "relationship": _text(fields, "relationship"),
                     "method": _text(fields, "method"),
                     "contacted_at": _instant(fields, "contacted_at"), "reached": reached,
                     "learned": _text(fields, "learned"), "recorded_at": recorded_at}
    return kind, op_uuid, episode_id, arguments


def _run(db_session: Session, user: User, kind: str, op_uuid: str, episode_id: int,
         arguments: dict, skew: bool) -> dict:
    try:
        episode = access.episode_for(db_session, user, episode_id, write=True)
    except Forbidden as forbidden:
        raise _Conflict(forbidden.description) from None
    except NotFound:
        _lost_case(db_session, user, kind, op_uuid, episode_id)
    if kind == "step_entry":
        view = view_of(episode, arguments["step_key"])
        if (view is not None and view.spec.sensitive
                and not access.can_see_sensitive(db_session, user, episode.child)):
            raise _Rejected("not found")  # as the wizard: the step is not shown to this user
        step_key = arguments.pop("step_key")
        entry, ticket = record_item(db_session, episode, step_key, user, client_uuid=op_uuid,
                                    clock_skew=skew, **arguments)
        if entry is None:
            return {"status": "duplicate", "response": ticket.response}
        return {"status": "applied", "response": {"entry_id": entry.id, "step": step_key}}
    contact, ticket = log_contact(db_session, episode, user, client_uuid=op_uuid, clock_skew=skew,
                                  **arguments)
    if contact is None:
        return {"status": "duplicate", "response": ticket.response}
    return {"status": "applied", "response": {"contact_id": contact.id}}


def _lost_case(db_session: Session, user: User, kind: str, op_uuid: str, episode_id: int):
    """The episode is not (or no longer) one this user may work: always raises.

    An op this user already stored is a duplicate all the same, so a phone that lost the answer
    is told its work is safe. A user who recorded on the episode before knows the case, and is
    told it left their caseload (a conflict); anyone else gets "not found", so ids cannot be probed.
    """
    stored = db_session.scalar(select(ClientOp).where(
        ClientOp.uuid == op_uuid, ClientOp.user_id == user.id, ClientOp.kind == kind))
    if stored is not None:
        raise _Duplicate(json.loads(stored.response))
    worked = db_session.scalar(select(
        exists().where(StepEntry.episode_step_id == EpisodeStep.id, EpisodeStep.episode_id == episode_id,
                       StepEntry.recorded_by_id == user.id)
        | exists().where(SearchContact.episode_id == episode_id,
                         SearchContact.recorded_by_id == user.id)))
    if worked:
        raise _Conflict("This case is no longer on your caseload; nothing was saved. Ask your "
                        "supervisor who has it now.")
    raise _Rejected("not found")


class _Duplicate(Exception):
    def __init__(self, response: dict):
        super().__init__("duplicate")
        self.response = response
