"""Applying a phone's outbox: one batch of structured operations, each exactly once (DESIGN §8).

``apply_batch`` knows nothing of requests. The caller opens one ``db.writing()`` transaction; each
operation then runs in its own savepoint, so a bad one is rolled back alone and never blocks the
rest. Every operation gets an answer:

- ``applied``: stored now;
- ``duplicate``: its UUID was stored before with the same content; the stored answer comes back;
- ``conflict``: its UUID was used for different content, the case is no longer the user's, the
  episode follows another policy version than the phone's page did, or the step's review stage was
  approved while the op waited on the phone (the worker may resend it ``as_addendum``);
- ``rejected``: invalid (with the field errors), malformed, of an unknown kind, or not found.

A batch also carries the phone's check-in (its device id and how many ops it holds, stored so that a
supervisor sees unsent work) and the ops the worker discarded on the phone, which are audited here,
by UUID and kind only, never with their content.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden, NotFound

from . import access, clock
from .audit import record_event
from .checklists import EntryInvalid, record_item, view_of
from .client_ops import OpConflict, claim, valid_uuid
from .contacts import log_contact
from .devices import check_in
from .episodes import EpisodeInvalid
from .models import ClientOp, Episode, EpisodeStep, SearchContact, StepEntry, User
from .stages import STAGES, STAGE_OF_CHECKLIST, base_stage
from .summaries import deferred as summaries_deferred

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
    """The device clock and the ops of a batch, or BatchInvalid (the check-in and the discards
    included, so that nothing of an unreadable batch is applied)."""
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
    device_id = batch.get("device_id")
    if device_id is not None and (not isinstance(device_id, str) or valid_uuid(device_id) is None):
        raise BatchInvalid("'device_id' must be a UUID.")
    _check_discards(batch.get("discarded"))
    return device_time, ops


def _check_discards(discarded) -> None:
    if discarded is None:
        return
    if not isinstance(discarded, list) or len(discarded) > MAX_OPS:
        raise BatchInvalid(f"'discarded' must be a list of at most {MAX_OPS} items.")
    for item in discarded:
        if (not isinstance(item, dict) or not isinstance(item.get("uuid"), str)
                or valid_uuid(item["uuid"]) is None or item.get("kind") not in KINDS
                or isinstance(item.get("episode_id"), bool)
                or not isinstance(item.get("episode_id"), int)
                or parse_instant(item.get("discarded_at")) is None):
            raise BatchInvalid("Each discarded item needs its uuid, kind, episode_id and "
                               "discarded_at.")


def apply_batch(db_session: Session, user: User, batch, now: datetime) -> dict:
    """Apply every op of ``batch`` for ``user``; call inside ``db.writing()``.

    Returns {"clock_skew": bool, "results": [{"uuid", "status", "reason"?, "errors"?,
    "response"?}, ...]} in the order of the ops. Raises BatchInvalid for an unreadable batch.
    """
    device_time, ops = check_batch(batch)
    skew = clock.skewed(device_time, now)
    # The episodes this user may work, checked once per batch: one transaction cannot see the
    # answer change, and holding them keeps them (and their children) in the session.
    workable: dict[int, Episode] = {}
    with summaries_deferred(db_session):
        results = [_apply_op(db_session, user, op, skew, workable) for op in ops]
    for item in batch.get("discarded") or ():
        _audit_discard(db_session, user, item)
    if batch.get("device_id") is not None:
        settled = sum(1 for result in results if result["status"] in ("applied", "duplicate"))
        held = batch.get("held")
        # What the phone holds once this batch is settled: the quarantined ops and any beyond it.
        remaining = max(0, (held if held is not None else len(ops)) - settled)
        check_in(db_session, user, valid_uuid(batch["device_id"]), remaining, device_time, now)
    return {"clock_skew": skew, "results": results}


def _audit_discard(db_session: Session, user: User, item: dict) -> None:
    """Audit one op the worker threw away on the phone: once, however often the phone resends
    the notice. The UUID is claimed as a discard, so the op itself can never be applied later."""
    op_uuid = valid_uuid(item["uuid"])
    described = {"kind": item["kind"], "episode_id": item["episode_id"]}
    with db_session.begin_nested():
        try:
            if not claim(db_session, op_uuid, user, "discard", described).new:
                return
        except OpConflict:
            return  # the op was stored before the phone discarded it: there is nothing to audit
        episode = db_session.get(Episode, item["episode_id"])
        record_event(db_session, user, "outbox_discarded", "client_op", op_uuid,
                     child_id=episode.child_id if episode is not None else None,
                     changes={**described, "discarded_at": parse_instant(item["discarded_at"])})


def _apply_op(db_session: Session, user: User, op, skew: bool, workable: dict) -> dict:
    op_uuid = op.get("uuid") if isinstance(op, dict) else None
    result: dict = {"uuid": op_uuid if isinstance(op_uuid, str) else None}
    try:
        kind, checked_uuid, episode_id, arguments = _check_op(op)
        result["uuid"] = checked_uuid
        with db_session.begin_nested():
            result.update(_run(db_session, user, kind, checked_uuid, episode_id, arguments, skew,
                               workable))
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
        if conflict.addendum_possible:
            result["can_add_as_addendum"] = True
    except _Duplicate as duplicate:
        result.update(status="duplicate", response=duplicate.response)
    return result


class _Conflict(Exception):
    def __init__(self, reason: str, addendum_possible: bool = False):
        super().__init__(reason)
        self.addendum_possible = addendum_possible


def _text(fields: dict, name: str) -> str:
    value = fields.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Rejected("malformed", {name: "This must be text."})
    if "\x00" in value:  # PostgreSQL text cannot hold it (fieldapp.input_bounds)
        raise _Rejected("malformed", {name: "This text contains a NUL character."})
    return value


def _instant(fields: dict, name: str) -> datetime | None:
    """A device clock reading: an ISO 8601 instant with its zone."""
    value = fields.get(name)
    if value in (None, ""):
        return None
    instant = parse_instant(value)
    if instant is None:
        raise _Rejected("malformed", {name: "Give an ISO 8601 date and time with its zone."})
    return instant


def _wall_time(fields: dict, name: str) -> datetime | None:
    """A time the worker typed: read as the forms read it, in the agency's zone unless it
    carries its own."""
    value = fields.get(name)
    if value in (None, ""):
        return None
    instant = clock.parse_local(value) if isinstance(value, str) else None
    if instant is None:
        raise _Rejected("invalid", {name: "Give a date and time, such as 2026-03-02T14:30."})
    return instant


def _check_op(op) -> tuple[str, str, int, dict]:
    """The kind, UUID, episode id and keyword arguments of one op, or _Rejected.

    Two arguments are not passed on to the write: ``policy_version`` (the key the phone's page
    showed) and ``as_addendum`` (the worker's consent to join an approved stage's addendum)."""
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
    policy_version = op.get("policy_version")
    if policy_version is not None and not isinstance(policy_version, str):
        raise _Rejected("malformed", {"policy_version": "This must be a policy version's key."})
    if not isinstance(op.get("as_addendum", False), bool):
        raise _Rejected("malformed", {"as_addendum": "This must be true or false."})
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
                     "done_at": _wall_time(fields, "done_at"), "recorded_at": recorded_at,
                     "raw_evidence": evidence, "reason": _text(fields, "reason"),
                     "supersedes_id": supersedes, "policy_version": policy_version,
                     "as_addendum": op.get("as_addendum", False)}
    else:
        reached = fields.get("reached", "")
        if isinstance(reached, bool):
            reached = "reached" if reached else "attempt"
        elif not isinstance(reached, str):
            raise _Rejected("malformed", {"reached": "Say 'reached' or 'attempt'."})
        arguments = {"purpose": _text(fields, "purpose"), "person": _text(fields, "person"),
                     "relationship": _text(fields, "relationship"),
                     "method": _text(fields, "method"),
                     "contacted_at": _wall_time(fields, "contacted_at"), "reached": reached,
                     "learned": _text(fields, "learned"), "recorded_at": recorded_at,
                     "policy_version": policy_version}
    return kind, op_uuid, episode_id, arguments


def _run(db_session: Session, user: User, kind: str, op_uuid: str, episode_id: int,
         arguments: dict, skew: bool, workable: dict) -> dict:
    episode = workable.get(episode_id)
    if episode is None:
        try:
            episode = access.episode_for(db_session, user, episode_id, write=True)
        except Forbidden as forbidden:
            raise _Conflict(forbidden.description) from None
        except NotFound:
            _lost_case(db_session, user, kind, op_uuid, episode_id)
        workable[episode_id] = episode
    _check_policy_version(episode, arguments.pop("policy_version"))
    if kind == "step_entry":
        view = view_of(episode, arguments["step_key"])
        if (view is not None and view.spec.sensitive
                and not access.can_see_sensitive(db_session, user, episode.child)):
            raise _Rejected("not found")  # as the wizard: the step is not shown to this user
        as_addendum = arguments.pop("as_addendum")
        if view is not None and not as_addendum:
            _check_stage_open(db_session, episode, view.spec)
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


def _check_policy_version(episode: Episode, policy_version: str | None) -> None:
    """The op is applied under its episode's pinned policy; a phone whose page showed another
    version (a stale cache, a forged op) is told so rather than silently re-read."""
    if policy_version is not None and policy_version != episode.policy_version.key:
        raise _Conflict(f"This was recorded on a page for policy {policy_version}, but the episode "
                        f"follows {episode.policy_version.key}. Nothing was saved; open the step "
                        "again and re-enter it.")


def _check_stage_open(db_session: Session, episode: Episode, spec) -> None:
    """Online, an entry on an approved stage joins an addendum, and the worker sees that on the
    page. Offline they could not: so the op waits for their say-so instead (``as_addendum``)."""
    stage_key = STAGE_OF_CHECKLIST.get(spec.checklist)
    if spec.contact_log or stage_key is None:
        return
    stage = base_stage(db_session, episode, stage_key)
    if stage is not None and stage.state == "approved":
        approved = stage.approved_at.astimezone(clock.agency_zone()).strftime("%-d %b %Y, %H:%M")
        raise _Conflict(f"The {STAGES[stage_key].lower()} stage was approved by "
                        f"{stage.approved_name} on {approved} while this waited on the phone. "
                        "Send it as an addendum, or discard it.", addendum_possible=True)


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
