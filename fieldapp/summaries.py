"""The per-episode summary rows (DESIGN §6): what the compliance measures need, one row each.

``refresh(db_session, episode)`` rewrites an episode's row from its records. Every write that can
change it calls it inside its own transaction (step entries, contacts, the episode's clocks and
information events, risk and prevention records), so the row is never behind the data it sums.
The measures then read these rows with SQL alone. A batch of many writes (a phone's sync) wraps
them in ``deferred(db_session)``: each touched episode is then rewritten once, at the end of the
batch, still inside its transaction.

The evidence rule is applied here, once (DESIGN §6):
- a step is evidenced when its latest non-superseded entry is ``done``, or ``not_applicable``
  where the policy allows that; its time is the earliest such entry's ``done_at``;
- within the deadline means evidenced with ``done_at <= due_at``;
- ``attempted`` is kept apart, and only for steps that are not evidenced.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from . import clock
from .models import Child, Episode, EpisodeStep, EpisodeSummary, Handover, StepEntry, User
from .models.summaries import MEASURED_STEPS
from .policy import policy_of
from .risk import (acf_factors_at, add_months, intervention_within, missouri_factors_at,
                   visitation_plan_on)

FIRST_MONTH = 1  # M5: a search contact or attempt in [T0, T0 + 1 month)
SERVICE_MONTHS = 6  # R2: a supportive service in the 6 months after T2


@dataclass(frozen=True)
class Window:
    """The span in which a step's evidence counts for its measure: [anchor, anchor + months)."""
    anchor: str  # "t0" or "t2"
    months: int


# Steps whose measure only counts evidence inside a window. Every other step counts any evidence.
WINDOWS = {"search_contacts": Window("t0", FIRST_MONTH),
           "supportive_services": Window("t2", SERVICE_MONTHS)}
CONTACT_LOG_PURPOSE = {"search_contacts": "search"}  # steps evidenced by the contact log


def month_index(day: date) -> int:
    """A calendar month as one integer, so that SQL counts months by subtraction."""
    return day.year * 12 + day.month - 1


def months_later(at: datetime, months: int) -> datetime:
    """The same wall-clock time ``months`` calendar months later in the agency's zone, as UTC."""
    local = at.astimezone(clock.agency_zone())
    day = add_months(local.date(), months)
    return datetime.combine(day, local.time(), tzinfo=clock.agency_zone()).astimezone(UTC)


def _local_day(at: datetime) -> date:
    return at.astimezone(clock.agency_zone()).date()


def load_step_entries(db_session: Session, episode: Episode) -> None:
    """Load, in one query, the entries of each of the episode's steps not loaded yet.

    A step's state and its evidence read its entries, and walking every step (the measured
    steps here, ``next_open_step`` after a record) otherwise lazy-loads them with one SELECT per
    step, most of a record-step POST's time. Steps whose entries are already in the session keep
    them, exactly as a lazy load would leave them, and the query orders the entries as the
    relationship does, so what callers see does not change, only how many round trips it takes.
    """
    steps = [s for s in episode.steps  # (the state's dict holds only loaded attributes)
             if inspect(s).persistent and "entries" not in inspect(s).dict]
    if not steps:
        return
    found: dict[int, list[StepEntry]] = defaultdict(list)
    rows = db_session.scalars(select(StepEntry)
                              .where(StepEntry.episode_step_id.in_([s.id for s in steps]))
                              .order_by(StepEntry.received_at, StepEntry.id))
    for entry in rows:
        found[entry.episode_step_id].append(entry)
    for step in steps:
        set_committed_value(step, "entries", found[step.id])


def _evidenced_times(step: EpisodeStep, na_allowed: bool) -> tuple[list[datetime], bool]:
    """(done_at of each evidencing entry, attempted) under the evidence rule."""
    current = step.current_entries
    counts = ("done", "not_applicable") if na_allowed else ("done",)
    if not current or current[-1].outcome not in counts:
        return [], any(e.outcome == "attempted" for e in current)
    return [e.done_at for e in current if e.outcome in counts], False


def _step_values(episode: Episode, key: str, windows: dict[str, tuple[datetime, datetime] | None],
                 contact_times: dict[str, list[datetime]]) -> dict:
    step = next((s for s in episode.steps if s.step_key == key), None)
    if key in CONTACT_LOG_PURPOSE:
        times, attempted = contact_times[CONTACT_LOG_PURPOSE[key]], False
    elif step is None:
        times, attempted = [], False
    else:
        spec = policy_of(episode.policy_version).step(key)
        times, attempted = _evidenced_times(step, "not_applicable" in spec.outcomes)
    if key in WINDOWS:
        span = windows[WINDOWS[key].anchor]
        times = [t for t in times if span and span[0] <= t < span[1]]
    first = min(times) if times else None
    due = step.due_at if step is not None else None
    return {f"{key}_at": first,
            f"{key}_on_time": first is not None and due is not None and first <= due,
            f"{key}_attempted": attempted}


def team_at(db_session: Session, child: Child, at: datetime) -> int | None:
    """The team of the child's caseworker at ``at``, read back through the handovers."""
    later = db_session.scalar(select(Handover).where(Handover.child_id == child.id,
                                                     Handover.handed_at > at)
                              .order_by(Handover.handed_at, Handover.id).limit(1))
    worker_id = later.from_user_id if later is not None else child.caseworker_id
    worker = db_session.get(User, worker_id) if worker_id else None
    return worker.team_id if worker else None


def summary_values(db_session: Session, episode: Episode) -> dict:
    """The summary row of ``episode``, computed from its records."""
    t0, t2 = episode.discovered_at, episode.returned_at
    missing_until = episode.located_at or episode.ended_at
    first_month_ends = months_later(t0, FIRST_MONTH)
    service_window_ends = months_later(t2, SERVICE_MONTHS) if t2 else None
    windows = {"t0": (t0, first_month_ends),
               "t2": (t2, service_window_ends) if t2 else None}
    contacts = {purpose: sorted(c.contacted_at for c in episode.contacts if c.purpose == purpose)
                for purpose in set(CONTACT_LOG_PURPOSE.values())}
    owed_from = month_index(_local_day(t0)) + 1  # T0's own month is the first-contact deadline's
    months_until = month_index(_local_day(missing_until)) if missing_until else None
    covered = {month_index(_local_day(t)) for t in contacts["search"]}
    months_covered = len({m for m in covered
                          if m >= owed_from and (months_until is None or m <= months_until)})
    acf = {f.key for f in acf_factors_at(db_session, episode.child_id, t0)}
    values = {
        "episode_id": episode.id, "child_id": episode.child_id,
        "team_id": team_at(db_session, episode.child, t0),
        "t0": t0, "t0_month": _local_day(t0).strftime("%Y-%m"),
        "t1": episode.located_at, "t2": t2,
        "ended_at": episode.ended_at, "end_reason": episode.end_reason,
        "missing_until": missing_until,
        "missing_seconds": int((missing_until - t0).total_seconds()) if missing_until else None,
        "first_month_ends": first_month_ends, "service_window_ends": service_window_ends,
        "months_owed_from": owed_from, "months_until": months_until,
        "months_covered": months_covered,
        "acf_prior_episode": "prior_episode" in acf,
        "acf_many_placements": "many_placements" in acf,
        "acf_congregate": "congregate" in acf,
        "acf_no_caring_adult": "no_caring_adult" in acf,
        "acf_factors": len(acf),
        "mo_factors": len(missouri_factors_at(db_session, episode.child_id, t0)),
        "intervention_before_t0": intervention_within(db_session, episode.child_id, t0),
        "visitation_plan_at_t0": visitation_plan_on(db_session, episode.child_id, _local_day(t0)),
        "refreshed_at": clock.now(),
    }
    load_step_entries(db_session, episode)  # one query, not one per measured step
    for key in MEASURED_STEPS:
        values.update(_step_values(episode, key, windows, contacts))
    return values


_DEFERRED = "fieldapp.summaries.deferred"


@contextmanager
def deferred(db_session: Session) -> Iterator[None]:
    """Within the block, ``refresh`` only notes the episode; each noted one is rewritten once when
    the block ends without an error. A phone's batch of 500 ops on a few episodes then costs a few
    rewrites instead of 500. An episode whose op was rolled back is rewritten too, harmlessly:
    the row is computed from what is stored."""
    if _DEFERRED in db_session.info:
        yield  # already deferred by an outer block, which will do the rewriting
        return
    pending: dict[int, Episode] = {}
    db_session.info[_DEFERRED] = pending
    try:
        yield
    finally:
        del db_session.info[_DEFERRED]
    for episode in pending.values():
        refresh(db_session, episode)


def refresh(db_session: Session, episode: Episode) -> EpisodeSummary | None:
    """Rewrite the episode's summary row. Call inside the write's own transaction.
    Inside ``deferred``, only note it (and return None)."""
    pending = db_session.info.get(_DEFERRED)
    if pending is not None:
        pending[episode.id] = episode
        return None
    db_session.flush()  # the write's own rows first, so the queries below see them
    values = summary_values(db_session, episode)
    row = db_session.get(EpisodeSummary, episode.id)
    if row is None:
        row = EpisodeSummary(**values)
        db_session.add(row)
    else:
        for name, value in values.items():
            setattr(row, name, value)
    db_session.flush()
    return row


def refresh_child(db_session: Session, child_id: int) -> int:
    """Rewrite the rows of every episode of a child, e.g. after a back-dated risk record changes
    their risk at T0. Returns how many rows were written."""
    episodes = db_session.scalars(select(Episode).where(Episode.child_id == child_id)).all()
    for episode in episodes:
        refresh(db_session, episode)
    return len(episodes)


def episode_id_batches(db_session: Session, size: int = 500) -> list[list[int]]:
    """Every episode id, in batches: ``fieldapp summaries rebuild`` writes one batch per
    transaction, so that workers recording steps never wait long behind it."""
    ids = db_session.scalars(select(Episode.id).order_by(Episode.id)).all()
    return [list(ids[start:start + size]) for start in range(0, len(ids), size)]


def rebuild(db_session: Session, episode_ids: list[int]) -> int:
    """Rewrite the rows of these episodes, for data written before the summaries existed (or
    changed outside the app's write paths, e.g. placements from a roster import)."""
    episodes = db_session.scalars(select(Episode).where(Episode.id.in_(episode_ids))).all()
    for episode in episodes:
        refresh(db_session, episode)
    return len(episodes)
