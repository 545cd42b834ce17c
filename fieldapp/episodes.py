"""Episodes: a child's absence from care and its clocks T0, T1 and T2 (DESIGN §3).

Opening, locating, returning and ending an episode each change the child's status through
``status.change_status`` and then ``schedule`` the policy's steps, storing each step's deadline
as a UTC ``due_at`` once its anchor is known.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock
from .errors import FieldErrors
from .audit import record_event
from .deadlines import deadline_for
from .models import Child, Episode, EpisodeStep, InfoEvent, Placement, User
from .policy import in_force_at, policy_of
from .stages import ensure_stage
from .summaries import refresh as refresh_summary
from .status import StatusChangeInvalid, UnapprovedLocation, change_status
from .vocabulary import MISSING_STATUSES, PLACEMENT_SETTINGS, STATUSES

DISCOVERED_BY = {"caseworker": "Caseworker", "custodian": "Custodian",
                 "placement_provider": "Placement provider"}
HOW_MISSING = {"ran_away": "Ran away", "abducted": "Abducted", "unknown": "Unknown", "other": "Other"}
LOCATED_WHERE = {"in_state": "In state", "out_of_state": "Out of state",
                 "out_of_country": "Out of country"}
END_REASONS = {"returned_to_care": "Returned to care",
               "released_from_custody": "Released from custody",
               "missing_again": "Missing again"}
INFO_EVENTS = {"trafficking_identified": "Identified as a sex-trafficking victim",
               "released_while_missing": "Released from custody while missing"}


LOCATED_STATUSES = ("located_pending_return", "unapproved_location_known")

# Status moves that are an episode's clocks, so they are made with the episode's own forms (which
# record T0, T1, T2 and start the checklists), never with the plain status form.
EPISODE_MOVES = (
    # (moving from, moving to, only while an episode is open, where to do it instead)
    (frozenset(STATUSES) - MISSING_STATUSES, MISSING_STATUSES, False,
     "Use “Report missing” so that the missing checklist starts with its deadlines."),
    (MISSING_STATUSES, frozenset(LOCATED_STATUSES), True,
     "Use “Child found” on the episode, so that the return checklist starts."),
    (frozenset(LOCATED_STATUSES), frozenset({"in_placement"}), True,
     "Use “Back in care” on the episode, so that the return deadlines are set."),
    (frozenset(STATUSES), frozenset({"released_from_custody"}), True,
     "Use “Custody ended” on the episode."),
)


def episode_move_problem(child_status: str, new_status: str, episode_open: bool) -> str | None:
    """Why this status change must go through the episode's forms, or None if it need not."""
    for moving_from, moving_to, needs_open, message in EPISODE_MOVES:
        if child_status in moving_from and new_status in moving_to and (episode_open or not needs_open):
            return message
    return None


class EpisodeInvalid(FieldErrors):
    """Field-by-field problems, worded for the user; nothing was saved."""


def open_episode_of(db_session: Session, child: Child) -> Episode | None:
    return db_session.scalar(select(Episode).where(Episode.child_id == child.id,
                                                   Episode.ended_at.is_(None)))


def latest_episode_of(db_session: Session, child: Child) -> Episode | None:
    return db_session.scalar(select(Episode).where(Episode.child_id == child.id)
                             .order_by(Episode.discovered_at.desc(), Episode.id.desc()).limit(1))


def _not_future(errors: dict, field: str, value: datetime | None, label: str) -> None:
    if value is None:
        errors[field] = f"Give the date and time {label}."
    elif value > clock.now():
        errors[field] = "This time is in the future. Give the time it actually happened."


def _status_errors(call) -> dict[str, str]:
    try:
        call()
    except StatusChangeInvalid as invalid:
        return invalid.errors
    return {}


# --- scheduling ---------------------------------------------------------------------------

def _anchor_instant(episode: Episode, step_spec, steps_by_key: dict) -> datetime | None:
    kind, target = step_spec.anchor_kind, step_spec.anchor_target
    if kind == "clock":
        return {"T0": episode.discovered_at, "T1": episode.located_at,
                "T2": episode.returned_at}[target]
    if kind == "event":
        times = [e.info_received_at for e in episode.info_events if e.kind == target]
        return min(times) if times else None
    anchor_step = steps_by_key.get(target)
    if anchor_step is None:
        return None
    done = [e.done_at for e in anchor_step.current_entries if e.outcome == "done"]
    return min(done) if done else None


def schedule(db_session: Session, episode: Episode) -> list[EpisodeStep]:
    """Raise the steps that apply now and store the deadlines whose anchors are set.

    Idempotent: run after any change to the clocks, information events or anchoring steps.
    The missing checklist applies from T0, the return checklist from T1; a step anchored on an
    information event exists only once that event is recorded.
    """
    policy = policy_of(episode.policy_version)
    zone = clock.agency_zone()
    steps_by_key = {s.step_key: s for s in episode.steps}
    raised = []
    for position, spec in enumerate(policy.steps):
        applies = spec.checklist == "missing" or episode.located_at is not None
        if spec.raised_by_event and not any(e.kind == spec.raised_by_event for e in episode.info_events):
            applies = False
        step = steps_by_key.get(spec.key)
        if step is None and applies:
            step = EpisodeStep(episode=episode, step_key=spec.key, checklist=spec.checklist,
                               position=position, raised_at=clock.now())
            db_session.add(step)
            steps_by_key[spec.key] = step
            raised.append(step)
        # T0/T1/T2 and information events never move once set, but a step anchored on another
        # step follows that step's latest correction.
        if step is not None and (step.due_at is None or spec.anchor_kind == "step"):
            anchor = _anchor_instant(episode, spec, steps_by_key)
            if anchor is not None:
                step.due_at = deadline_for(spec, anchor, policy, zone)
    db_session.flush()
    return raised


def close_open_steps(episode: Episode, reason: str, checklist: str | None = None) -> None:
    """Close the steps nobody has evidenced (e.g. return steps when the child runs again)."""
    at = clock.now()
    for step in episode.steps:
        if step.closed_reason is None and (checklist is None or step.checklist == checklist) \
                and not any(e.outcome in ("done", "not_applicable") for e in step.current_entries):
            step.closed_reason, step.closed_at = reason, at


# --- the episode's life -------------------------------------------------------------------

def open_episode(db_session: Session, child: Child, actor: User, *, status: str,
                 discovered_at: datetime | None, discovered_by_role: str, discovered_by_name: str,
                 how_missing: str, last_seen_at: datetime | None = None,
                 last_seen_place: str = "", note: str = "") -> Episode:
    """The child's whereabouts are unknown: open an episode at T0 and raise the missing steps."""
    errors: dict[str, str] = {}
    if status not in MISSING_STATUSES:
        errors["status"] = "Choose whereabouts unknown, or in contact but location unknown."
    if child.status in MISSING_STATUSES:
        errors["status"] = "This child is already recorded as missing; work the open episode."
    _not_future(errors, "discovered_at", discovered_at, "the absence was discovered")
    if discovered_by_role not in DISCOVERED_BY:
        errors["discovered_by_role"] = "Say who discovered the absence."
    if not discovered_by_name.strip():
        errors["discovered_by_name"] = "Give the name of the person who discovered the absence."
    if how_missing not in HOW_MISSING:
        errors["how_missing"] = "Say how the child went missing (choose unknown if nobody knows)."
    if last_seen_at and discovered_at and last_seen_at > discovered_at:
        errors["last_seen_at"] = "The last sighting cannot be after the absence was discovered."
    version = in_force_at(db_session, discovered_at) if discovered_at else None
    if discovered_at and "discovered_at" not in errors and version is None:
        errors["discovered_at"] = ("No installed policy covers this date, so its deadlines are "
                                   "unknown. Ask an administrator to install one.")
    if not errors:
        errors = _status_errors(lambda: _check_status(child, status, discovered_at, note))
        errors = {("discovered_at" if k == "since" else k): v for k, v in errors.items()}
    if errors:
        raise EpisodeInvalid(errors)

    previous = open_episode_of(db_session, child) or latest_episode_of(db_session, child)
    if previous is not None:
        close_open_steps(previous, "missing_again", "return")
        if previous.ended_at is None:
            previous.end_reason, previous.ended_at = "missing_again", discovered_at
        db_session.flush()
    change_status(db_session, child, actor, status, discovered_at, note)
    episode = Episode(child=child, policy_version=version, previous_episode=previous,
                      discovered_at=discovered_at, discovered_by_role=discovered_by_role,
                      discovered_by_name=discovered_by_name.strip(), how_missing=how_missing,
                      last_seen_at=last_seen_at, last_seen_place=last_seen_place.strip(),
                      opened_by_id=actor.id, created_at=clock.now())
    db_session.add(episode)
    db_session.flush()
    schedule(db_session, episode)
    ensure_stage(db_session, episode, "initial_response")
    if previous is not None and previous.ended_at is not None:
        ensure_stage(db_session, previous, "closure")
    if previous is not None:
        refresh_summary(db_session, previous)
    refresh_summary(db_session, episode)
    record_event(db_session, actor, "episode.open", "episode", episode.id, child_id=child.id,
                 changes={"discovered_at": discovered_at, "policy": version.key,
                          "previous_episode_id": previous.id if previous else None})
    return episode


def _check_status(child: Child, status: str, since: datetime | None, note: str,
                  location: UnapprovedLocation | None = None) -> None:
    from .status import status_change_problems
    problems = status_change_problems(child, status, since, note, location)
    if problems:
        raise StatusChangeInvalid(problems)


def mark_located(db_session: Session, episode: Episode, actor: User, *, located_at: datetime | None,
                 located_where: str, located_place: str, located_by: str, status: str,
                 location: UnapprovedLocation | None = None, note: str = "") -> Episode:
    """T1: the child's whereabouts are known. The return checklist starts."""
    errors: dict[str, str] = {}
    if not episode.is_open or episode.located_at is not None:
        errors["located_at"] = "This episode already has the child located."
    _not_future(errors, "located_at", located_at, "the child was located")
    if located_at and located_at < episode.discovered_at:
        errors["located_at"] = "The child cannot be located before the absence was discovered."
    if located_where not in LOCATED_WHERE:
        errors["located_where"] = "Say whether the child was found in state, out of state or out of country."
    if not located_by.strip():
        errors["located_by"] = "Say who located the child."
    if status not in LOCATED_STATUSES:
        errors["status"] = "Choose located (pending return) or at a known unapproved address."
    if not errors:
        errors = _status_errors(lambda: _check_status(episode.child, status, located_at, note, location))
        errors = {("located_at" if k == "since" else k): v for k, v in errors.items()}
    if errors:
        raise EpisodeInvalid(errors)
    episode.located_at, episode.located_where = located_at, located_where
    episode.located_place, episode.located_by = located_place.strip(), located_by.strip()
    change_status(db_session, episode.child, actor, status, located_at, note, location)
    schedule(db_session, episode)
    ensure_stage(db_session, episode, "return")
    refresh_summary(db_session, episode)
    record_event(db_session, actor, "episode.located", "episode", episode.id,
                 child_id=episode.child_id, changes={"located_at": located_at,
                                                     "located_where": located_where})
    return episode


def mark_returned(db_session: Session, episode: Episode, actor: User, *, returned_at: datetime | None,
                  setting: str, provider_name: str, note: str = "") -> Episode:
    """T2: back in an approved placement. The episode ends as returned to care."""
    errors: dict[str, str] = {}
    if episode.located_at is None:
        errors["returned_at"] = "Record where the child was located first."
    elif not episode.is_open:
        errors["returned_at"] = "This episode has ended."
    _not_future(errors, "returned_at", returned_at, "the child was back in placement")
    if returned_at and episode.located_at and returned_at < episode.located_at:
        errors["returned_at"] = "The return cannot be before the child was located."
    if setting not in PLACEMENT_SETTINGS:
        errors["setting"] = "Choose the placement setting."
    if not provider_name.strip():
        errors["provider_name"] = "Name the placement (provider or home)."
    if not errors:
        errors = _status_errors(lambda: _check_status(episode.child, "in_placement", returned_at, note))
        errors = {("returned_at" if k == "since" else k): v for k, v in errors.items()}
    if errors:
        raise EpisodeInvalid(errors)
    child = episode.child
    day = returned_at.astimezone(clock.agency_zone()).date()
    current = child.current_placement
    if current is not None:
        current.ended_on = max(current.started_on, day)
    placement = Placement(child=child, setting=setting, provider_name=provider_name.strip(),
                          started_on=day, created_at=clock.now())
    db_session.add(placement)
    db_session.flush()
    episode.returned_at, episode.return_placement_id = returned_at, placement.id
    episode.end_reason, episode.ended_at = "returned_to_care", returned_at
    change_status(db_session, child, actor, "in_placement", returned_at, note)
    schedule(db_session, episode)
    ensure_stage(db_session, episode, "closure")
    refresh_summary(db_session, episode)
    record_event(db_session, actor, "episode.returned", "episode", episode.id, child_id=child.id,
                 changes={"returned_at": returned_at, "setting": setting})
    return episode


def release_from_custody(db_session: Session, episode: Episode, actor: User, *,
                         released_at: datetime | None, court_order_date: date | None,
                         note: str = "") -> Episode:
    """Custody ended by court order. If the child was still missing, law enforcement and NCMEC
    must be told, so a step is raised for it."""
    errors: dict[str, str] = {}
    if not episode.is_open:
        errors["released_at"] = "This episode has ended."
    _not_future(errors, "released_at", released_at, "custody ended")
    if court_order_date is None:
        errors["court_order_date"] = "Give the date of the court order that ended custody."
    elif court_order_date > clock.today():
        errors["court_order_date"] = "The court order date is in the future."
    if not errors:
        errors = _status_errors(lambda: _check_status(
            episode.child, "released_from_custody", released_at, note or "Released by court order"))
        errors = {("released_at" if k == "since" else k): v for k, v in errors.items()}
    if errors:
        raise EpisodeInvalid(errors)
    still_missing = episode.located_at is None
    if still_missing:
        db_session.add(InfoEvent(episode=episode, kind="released_while_missing",
                                 info_received_at=released_at, recorded_by_id=actor.id,
                                 recorded_at=clock.now()))
    episode.end_reason, episode.ended_at = "released_from_custody", released_at
    episode.court_order_date = court_order_date
    change_status(db_session, episode.child, actor, "released_from_custody", released_at,
                  note or "Released by court order")
    db_session.flush()
    schedule(db_session, episode)
    ensure_stage(db_session, episode, "closure")
    refresh_summary(db_session, episode)
    record_event(db_session, actor, "episode.released", "episode", episode.id,
                 child_id=episode.child_id, changes={"released_at": released_at,
                                                     "court_order_date": court_order_date,
                                                     "while_missing": still_missing})
    return episode


def record_info_event(db_session: Session, episode: Episode, actor: User, kind: str,
                      info_received_at: datetime | None) -> InfoEvent:
    """Information that raises a step, e.g. the child is identified as a trafficking victim."""
    errors: dict[str, str] = {}
    if kind != "trafficking_identified":
        errors["kind"] = "Choose what information was received."
    _not_future(errors, "info_received_at", info_received_at, "the information was received")
    if info_received_at and info_received_at < episode.discovered_at:
        errors["info_received_at"] = "This is before the episode began."
    if episode.end_reason == "missing_again":
        errors["kind"] = "This episode was closed when the child went missing again; use the new one."
    if errors:
        raise EpisodeInvalid(errors)
    event = InfoEvent(episode=episode, kind=kind, info_received_at=info_received_at,
                      recorded_by_id=actor.id, recorded_at=clock.now())
    db_session.add(event)
    db_session.flush()
    schedule(db_session, episode)
    refresh_summary(db_session, episode)
    record_event(db_session, actor, "episode.info_event", "info_event", event.id,
                 child_id=episode.child_id, changes={"kind": kind,
                                                     "info_received_at": info_received_at})
    return event
