"""Writing checked records, in file order, inside the caller's one write transaction.

Each type has a function that makes its row from a ``Record`` and returns the row's id. The
episode clocks, steps and deadlines come from the same code as a live episode (``schedule``, the
policy in force at T0, the review stages), and checklist entries and contacts are checked by the
same rules as the forms (``validate_entry``, ``contact_problems``). A refused record is
reported by its line, the rest go on being checked, and at the end any refusal raises
``HistoryInvalid`` so that the whole transaction rolls back.

Imported rows are received now (``received_at`` is the import time) and marked as imported: step
entries by their ``imported`` column, every row by its ``import_keys`` row.
"""
from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from ..checklists import validate_entry, view_of
from ..contacts import contact_problems
from ..episodes import close_open_steps, schedule
from ..errors import FieldErrors
from ..models import (CaringAdultFinding, Child, Episode, ImportKey, InfoEvent, Intervention,
                      Placement, RiskObservation, SearchContact, StatusChange, StepEntry, User,
                      VisitationPlan)
from ..policy import in_force_at, policy_of
from ..stages import ensure_stage, stage_for_entry
from ..status import record_initial_status
from ..summaries import deferred, refresh, refresh_child
from .records import TYPES, HistoryInvalid, Record

# Client UUIDs of imported entries and contacts are derived from their key, so they are stable.
UUID_NAMESPACE = uuid.UUID("5b0c1c52-6f0e-4a53-9d1e-1d7f3c0b8a11")
IMPORT_NOTE = "Imported history"


class Refused(ValueError):
    """The database's state refuses this record; the message says why."""


class Writer:
    def __init__(self, db_session: Session, actor: User | None):
        self.s = db_session
        self.actor = actor
        self.now = clock.now()
        self.local: dict[tuple[str, str], int] = {}
        self.failed: set[tuple[str, str]] = set()
        self.added: Counter = Counter()
        self.linked = 0
        self.problems: list[str] = []
        self.children: set[int] = set()  # children whose status and summaries need a look
        self.runs_again: list[Episode] = []
        self.users: dict[str, int] = {}
        self.linked_now = False  # whether the last child record matched a child by case id

    # --- the run --------------------------------------------------------------------------

    def write_all(self, records: list[Record], progress: Callable[[int], None] | None) -> None:
        # Summaries are rewritten once per episode when the block ends, not once per record.
        with deferred(self.s):
            for record in records:
                if not record.already_imported:
                    self._write(record)
                if progress:
                    progress(1)
            if self.problems:
                raise HistoryInvalid(self.problems)
            self._finish()

    def _write(self, record: Record) -> None:
        key = (record.kind, record.source_id)
        refs = {f.name: (f.refers_to, record.get(f.name)) for f in TYPES[record.kind]
                if f.refers_to and record.get(f.name)}
        if any(target in self.failed for target in refs.values()):
            self.failed.add(key)  # its own line was reported; this one cannot be checked
            return
        try:
            ids = {name: self._local_id(*target) for name, target in refs.items()}
            row_id = WRITERS[record.kind](self, record, ids)
        except Refused as why:
            self._refuse(record, [str(why)])
        except FieldErrors as invalid:
            self._refuse(record, [f"{_field_name(k)}: {v}" for k, v in invalid.errors.items()])
        else:
            self.local[key] = row_id
            self.s.add(ImportKey(kind=record.kind, source_id=record.source_id, local_id=row_id,
                                 content_sha256=record.sha256, imported_at=self.now,
                                 imported_by_id=self.actor.id if self.actor else None))
            if record.kind == "child" and self.linked_now:
                self.linked += 1
            else:
                self.added[record.kind] += 1

    def _refuse(self, record: Record, reasons: list[str]) -> None:
        self.failed.add((record.kind, record.source_id))
        self.problems += [f"line {record.line}: {reason}" for reason in reasons]

    def _local_id(self, kind: str, source: str) -> int:
        if (kind, source) not in self.local:
            self.local[(kind, source)] = self.s.scalar(select(ImportKey.local_id).where(
                ImportKey.kind == kind, ImportKey.source_id == source))
        return self.local[(kind, source)]

    def _user_id(self, username: str | None) -> int | None:
        if not username:
            return None
        if username.lower() not in self.users:
            self.users[username.lower()] = self.s.scalar(
                select(User.id).where(User.username == username.lower()))
        return self.users[username.lower()]

    def _finish(self) -> None:
        # An episode ended by a new absence closes its open return steps then (DESIGN §3). It is
        # marked ended this way only now, after its own entries: the live rule refuses new entries
        # on such an episode, while history holds entries made while it was still open.
        for episode in self.runs_again:
            episode.end_reason = "missing_again"
            close_open_steps(episode, "missing_again", "return")
            refresh(self.s, episode)
        self.s.flush()
        for child_id in self.children:
            child = self.s.get(Child, child_id)
            newest = self.s.scalar(select(StatusChange).where(StatusChange.child_id == child_id)
                                   .order_by(StatusChange.since.desc(), StatusChange.id.desc()).limit(1))
            if newest is not None:
                child.status, child.status_since = newest.status, newest.since
            # Placements, risk records and earlier episodes change other episodes' risk at T0.
            refresh_child(self.s, child_id)

    # --- one function per type ------------------------------------------------------------

    def child(self, r: Record, ids: dict) -> int:
        existing = self.s.scalar(select(Child).where(Child.case_id == r.get("case_id")))
        self.linked_now = existing is not None
        if existing is not None:
            return existing.id  # already in fieldapp (say, from the roster): linked, not changed
        worker = self.s.scalar(select(User).where(User.username == r.get("caseworker", "").lower()))
        child = Child(case_id=r.get("case_id"), first_name=r.get("first_name"),
                      last_name=r.get("last_name"), date_of_birth=r.get("date_of_birth"),
                      sex=r.get("sex"), county=r.get("county"), caseworker=worker,
                      created_at=self.now)
        self.s.add(child)
        record_initial_status(self.s, child, r.get("status"), r.get("status_since"), None,
                              IMPORT_NOTE)
        self.s.flush()
        self.children.add(child.id)
        return child.id

    def _child_row(self, model, r: Record, ids: dict, **values) -> int:
        row = model(child_id=ids["child"], **values)
        self.s.add(row)
        self.s.flush()
        self.children.add(ids["child"])
        return row.id

    def placement(self, r: Record, ids: dict) -> int:
        return self._child_row(Placement, r, ids, setting=r.get("setting"),
                               provider_name=r.get("provider_name"), started_on=r.get("started_on"),
                               ended_on=r.get("ended_on"), created_at=self.now)

    def status_change(self, r: Record, ids: dict) -> int:
        return self._child_row(StatusChange, r, ids, status=r.get("status"), since=r.get("since"),
                               set_by_id=None, note=r.get("note") or IMPORT_NOTE,
                               recorded_at=self.now, location_address=r.get("location_address"),
                               location_adult=r.get("location_adult"),
                               location_verified_how=r.get("location_verified_how"))

    def visitation_plan(self, r: Record, ids: dict) -> int:
        return self._child_row(VisitationPlan, r, ids, frequency=r.get("frequency"),
                               with_whom=r.get("with_whom"), adopted_on=r.get("adopted_on"),
                               ended_on=r.get("ended_on"), recorded_at=self.now)

    def risk_factor(self, r: Record, ids: dict) -> int:
        return self._child_row(RiskObservation, r, ids, factor=r.get("factor"),
                               present=r.get("present"), observed_on=r.get("observed_on"),
                               recorded_at=self.now)

    def caring_adult_finding(self, r: Record, ids: dict) -> int:
        return self._child_row(CaringAdultFinding, r, ids,
                               has_caring_adult=r.get("has_caring_adult"),
                               found_on=r.get("found_on"), recorded_at=self.now)

    def intervention(self, r: Record, ids: dict) -> int:
        return self._child_row(Intervention, r, ids, kind=r.get("kind"), done_on=r.get("done_on"),
                               note=r.get("note", ""), recorded_at=self.now)

    def episode(self, r: Record, ids: dict) -> int:
        t0, ended = r.get("discovered_at"), r.get("ended_at")
        others = self.s.scalars(select(Episode).where(Episode.child_id == ids["child"])
                                .order_by(Episode.discovered_at)).all()
        for other in others:
            if (ended is None or other.discovered_at < ended) and \
                    (other.ended_at is None or t0 < other.ended_at):
                end = "still open" if other.ended_at is None else f"ended {other.ended_at.isoformat()}"
                raise Refused(f"overlaps another episode of this child (T0 "
                              f"{other.discovered_at.isoformat()}, {end})")
        runs_again = r.get("end_reason") == "missing_again"
        episode = Episode(
            child_id=ids["child"], policy_version=in_force_at(self.s, t0), discovered_at=t0,
            discovered_by_role=r.get("discovered_by_role"), discovered_by_name=r.get("discovered_by_name"),
            how_missing=r.get("how_missing"), last_seen_at=r.get("last_seen_at"),
            last_seen_place=r.get("last_seen_place", ""), located_at=r.get("located_at"),
            located_where=r.get("located_where"), located_place=r.get("located_place"),
            located_by=r.get("located_by"), returned_at=r.get("returned_at"),
            end_reason=None if runs_again else r.get("end_reason"), ended_at=ended,
            court_order_date=r.get("court_order_date"), created_at=self.now)
        self.s.add(episode)
        if r.get("end_reason") == "released_from_custody" and r.get("located_at") is None:
            # As a live release while missing: law enforcement and NCMEC must be told.
            self.s.add(InfoEvent(episode=episode, kind="released_while_missing",
                                 info_received_at=ended, recorded_at=self.now))
        self.s.flush()
        # Link the chain of this child's episodes in T0 order, wherever this one falls in it.
        before = [o for o in others if o.discovered_at < t0]
        after = [o for o in others if o.discovered_at > t0]
        episode.previous_episode_id = before[-1].id if before else None
        if after:
            after[0].previous_episode_id = episode.id
        schedule(self.s, episode)
        ensure_stage(self.s, episode, "initial_response")
        for stage, applies in (("return", episode.located_at), ("closure", ended)):
            if applies is not None:
                ensure_stage(self.s, episode, stage)
        if runs_again:
            self.runs_again.append(episode)
        self.children.add(ids["child"])
        refresh(self.s, episode)
        return episode.id

    def checklist_entry(self, r: Record, ids: dict, step_key: str | None = None,
                        evidence: dict | None = None, done_at=None, kind: str = "checklist_entry") -> int:
        episode = self.s.get(Episode, ids["episode"])
        step_key = step_key or r.get("step")
        view = view_of(episode, step_key)
        if view is None:
            raise Refused(f"step {step_key!r} is not on this episode's checklist "
                          f"({episode.policy_version.key}; return steps start once the child "
                          "is located)")
        outcome = r.get("outcome", "done")
        done_at = done_at or r.get("done_at")
        recorded_at = r.get("recorded_at") or self.now
        supersedes = ids.get("supersedes")
        if supersedes is not None and supersedes not in {e.id for e in view.current}:
            raise Refused("supersedes names an entry that is not a current entry of this step")
        reason = r.get("reason", "")
        clean = validate_entry(episode, view, outcome=outcome, done_at=done_at,
                               recorded_at=recorded_at,
                               raw_evidence=evidence if evidence is not None else r.get("evidence", {}),
                               reason=reason)
        if view.spec.screening and clean.get("result") == "disclosed":
            reason = ""  # on a disclosure only the fact and the referral date are kept
        entry = StepEntry(step=view.row, review_stage=stage_for_entry(self.s, episode, view.spec),
                          outcome=outcome, done_at=done_at, recorded_at=recorded_at,
                          received_at=self.now, recorded_by_id=self._user_id(r.get("recorded_by")),
                          evidence=json.dumps(clean, sort_keys=True), reason=reason,
                          client_uuid=str(uuid.uuid5(UUID_NAMESPACE, f"{kind}:{r.source_id}")),
                          supersedes_id=supersedes, clock_skew=False, imported=True)
        self.s.add(entry)
        self.s.flush()
        if any(spec.anchor == f"step:{step_key}" for spec in policy_of(episode.policy_version).steps):
            schedule(self.s, episode)  # steps anchored on this one get their deadline
        refresh(self.s, episode)
        return entry.id

    def supportive_service(self, r: Record, ids: dict) -> int:
        """An entry on the supportive_services step, one per service (the existing design). A
        service that started on the day of the return counts from T2, not from midnight."""
        episode = self.s.get(Episode, ids["episode"])
        start = clock.local_midnight(r.get("start_date"))
        if episode.returned_at is not None:
            start = max(start, episode.returned_at)
        evidence = {"service": r.get("service"), "start_date": r.get("start_date").isoformat(),
                    "provider": r.get("provider", "")}
        return self.checklist_entry(r, ids, "supportive_services", evidence, start,
                                    "supportive_service")

    def search_contact(self, r: Record, ids: dict) -> int:
        episode = self.s.get(Episode, ids["episode"])
        recorded_at = r.get("recorded_at") or self.now
        reached = "reached" if r.get("reached") else "attempt"
        errors = contact_problems(episode, person=r.get("person"), relationship=r.get("relationship"),
                                  method=r.get("method"), contacted_at=r.get("contacted_at"),
                                  recorded_at=recorded_at, purpose=r.get("purpose"), reached=reached)
        if errors:
            raise FieldErrors(errors)
        contact = SearchContact(
            episode=episode, purpose=r.get("purpose"), person=r.get("person"),
            relationship_to_child=r.get("relationship"), method=r.get("method"),
            contacted_at=r.get("contacted_at"), reached=r.get("reached"),
            learned=r.get("learned", ""), recorded_by_id=self._user_id(r.get("recorded_by")),
            recorded_at=recorded_at, received_at=self.now,
            client_uuid=str(uuid.uuid5(UUID_NAMESPACE, f"search_contact:{r.source_id}")),
            clock_skew=False)
        self.s.add(contact)
        self.s.flush()
        refresh(self.s, episode)
        return contact.id


WRITERS = {kind: getattr(Writer, kind) for kind in TYPES}


SCREENING_FIELDS = ("disclosed", "cac_referral_date")


def _field_name(form_field: str) -> str:
    """A form field's name as the file spells it: ``ev_agency`` is ``evidence.agency``."""
    if form_field.startswith("ev_"):
        return f"evidence.{form_field[3:]}"
    if form_field.startswith("q_") or form_field in SCREENING_FIELDS:
        return f"evidence.{form_field}"
    return form_field
