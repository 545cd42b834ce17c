"""The missing and return checklists: what each step needs, its state, and recording it.

Entries are append-only (DESIGN §3). A correction is a new entry that supersedes an old one; both
stay visible. Every entry keeps four clocks: done_at (when it happened), recorded_at (the
device's clock at the tap), received_at (the server's) and the step's due_at.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session, object_session

from . import clock
from .errors import FieldErrors
from .audit import record_event
from .client_ops import Claim, claim, store_response
from .contacts import STEP_FOR_PURPOSE
from .episodes import schedule
from .stages import stage_for_entry
from .summaries import load_step_entries, refresh as refresh_summary
from .models import Episode, EpisodeStep, StepEntry, User
from .policy import EvidenceField, Policy, Step, policy_of

LATE_ENTRY_AFTER = timedelta(hours=24)
OUTCOME_LABELS = {"done": "Done", "attempted": "Tried, could not", "not_applicable": "Not applicable"}
EVIDENCED = ("done", "not_applicable")
SCREEN_ANSWERS = {"no": "No", "yes": "Yes", "declined": "Declined to answer"}


class EntryInvalid(FieldErrors):
    """Field-by-field problems with an entry, worded for the user; nothing was saved."""


@dataclass
class StepView:
    """A step as the wizard, the overview and the records show it."""
    row: EpisodeStep
    spec: Step
    number: int
    of: int
    entries: list[StepEntry] = field(default_factory=list)

    @property
    def current(self) -> list[StepEntry]:
        """Entries not superseded by a later correction."""
        return self.row.current_entries

    @property
    def latest(self) -> StepEntry | None:
        current = self.current
        return current[-1] if current else None

    @property
    def contact_times(self) -> list[datetime]:
        """For a contact-log step, the times of the contacts that serve it: its evidence."""
        return sorted(c.contacted_at for c in self.row.episode.contacts
                      if STEP_FOR_PURPOSE[c.purpose] == self.spec.key)

    @property
    def state(self) -> str:
        """open, done, attempted, not_applicable, or closed (e.g. the child went missing again)."""
        if self.spec.contact_log and self.contact_times:
            return "done"
        latest = self.latest  # once: each call walks the step's entries for the superseded
        if latest is not None and latest.outcome in EVIDENCED:
            return latest.outcome
        if self.row.closed_reason:
            return "closed"
        return latest.outcome if latest is not None else "open"

    @property
    def is_open(self) -> bool:
        return self.state in ("open", "attempted")

    @property
    def first_evidenced_at(self) -> datetime | None:
        if self.spec.contact_log:
            return self.contact_times[0] if self.contact_times else None
        times = [e.done_at for e in self.current if e.outcome in EVIDENCED]
        return min(times) if times else None


def late_entry(entry: StepEntry) -> bool:
    """Recorded more than 24 h after it was done (DESIGN §3)."""
    return entry.recorded_at - entry.done_at > LATE_ENTRY_AFTER


def evidence_of(entry: StepEntry) -> dict:
    return json.loads(entry.evidence or "{}")


def step_views(episode: Episode) -> list[StepView]:
    """Every raised step of the episode, in the policy's order, numbered within its checklist."""
    policy = policy_of(episode.policy_version)
    views = []
    for checklist in ("missing", "return"):
        rows = [s for s in episode.steps if s.checklist == checklist]
        for number, row in enumerate(rows, start=1):
            views.append(StepView(row, policy.step(row.step_key), number, len(rows)))
    return views


def view_of(episode: Episode, step_key: str) -> StepView | None:
    return next((v for v in step_views(episode) if v.spec.key == step_key), None)


def next_open_step(episode: Episode, after: str | None = None) -> StepView | None:
    """The next step still to do, after ``after`` in checklist order, wrapping to the start."""
    db_session = object_session(episode)
    if db_session is not None:
        load_step_entries(db_session, episode)  # every step's state: one query, not one per step
    every = step_views(episode)
    views = [v for v in every if v.is_open]
    if not views:
        return None
    if after is None:
        return views[0]
    order = [v.spec.key for v in every]  # the same steps, without building them again
    position = order.index(after) if after in order else -1
    later = [v for v in views if order.index(v.spec.key) > position]
    return (later or views)[0]


# --- deadline wording -----------------------------------------------------------------------

def _span(delta: timedelta) -> str:
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = ([f"{days} d"] if days else []) + ([f"{hours} h"] if hours else [])
    if not days and (mins or not hours):  # "3 h", "1 h 20 min", "0 min"; never "3 h 0 min"
        parts.append(f"{mins} min")
    return " ".join(parts)


def deadline_status(view: StepView, now: datetime) -> str:
    """"due in 1 h 20 min", "overdue by 3 h", "met", "missed by 3 h 10 min", "after the target".

    An agency_target is a default the agency chose, never a legal deadline: it is "target" and
    never "missed" (DESIGN §4).
    """
    due = view.row.due_at
    target = view.spec.basis == "agency_target"
    if due is None:
        return "no deadline yet"
    done_at = view.first_evidenced_at
    if done_at is not None:
        if done_at <= due:
            return "met"
        return f"after the target by {_span(done_at - due)}" if target else f"missed by {_span(done_at - due)}"
    if view.state == "closed":
        return "closed"
    if now <= due:
        return f"target in {_span(due - now)}" if target else f"due in {_span(due - now)}"
    return f"after the target by {_span(now - due)}" if target else f"overdue by {_span(now - due)}"


def is_overdue(view: StepView, now: datetime) -> bool:
    """Open past a law or policy deadline. A missed agency target is not "overdue" (DESIGN §4)."""
    return (view.is_open and view.spec.basis != "agency_target" and view.row.due_at is not None
            and view.row.due_at < now)


# --- recording ------------------------------------------------------------------------------

def positive_screen(episode: Episode) -> bool:
    view = view_of(episode, "trafficking_screening")
    if view is None or view.latest is None or view.latest.outcome != "done":
        return False
    return evidence_of(view.latest).get("result") in ("positive", "disclosed")


def allowed_outcomes(episode: Episode, spec: Step) -> tuple[str, ...]:
    if spec.required_after_positive_screen and positive_screen(episode):
        return tuple(o for o in spec.outcomes if o != "not_applicable")
    return spec.outcomes


def _check_field(f: EvidenceField, value, policy: Policy) -> tuple[object, str | None]:
    """The cleaned value of one evidence field, or a message saying what is wrong."""
    if f.type == "categories":
        chosen = [v for v in (value or []) if v]
        allowed = {c.key for c in policy.categories[f.options_from]}
        if any(v not in allowed for v in chosen):
            return None, "Choose from the listed categories."
        return chosen, None
    text = (value or "").strip() if isinstance(value, str) else ""
    if not text:
        return "", None
    if len(text) > 4000:
        return None, "This is too long (4,000 characters at most)."
    if f.type == "date":
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return None, "Give a date as YYYY-MM-DD."
        if day > clock.today() + timedelta(days=1):
            return None, "This date is in the future."
        return day.isoformat(), None
    if f.type == "datetime":
        instant = clock.parse_local(text)
        return (instant.isoformat(), None) if instant else (None, "Give a date and time.")
    if f.type == "phone":
        digits = [c for c in text if c.isdigit()]
        if len(digits) < 7 or any(not (c.isdigit() or c in " +-().ext") for c in text):
            return None, "Give a phone number (digits, spaces, + - ( ) only)."
    if f.type == "choice" and text not in f.options:
        return None, f"Choose one of: {', '.join(f.options)}."
    return text, None


def _clean_screening(policy: Policy, raw: dict, errors: dict) -> dict:
    """The screen's answers. On a disclosure the worker stops: only the fact of it and the CAC
    referral date are kept, and anything else sent is dropped, so no narrative is stored."""
    if raw.get("disclosed") == "yes":
        referral = (raw.get("cac_referral_date") or "").strip()
        try:
            referral_day = date.fromisoformat(referral)
        except ValueError:
            errors["cac_referral_date"] = "Give the date of the CAC referral (YYYY-MM-DD)."
            return {}
        return {"result": "disclosed", "interview_stopped": True,
                "cac_referral_date": referral_day.isoformat()}
    answers = {}
    for question in policy.screening.questions:
        answer = raw.get(f"q_{question.key}", "")
        if answer not in SCREEN_ANSWERS:
            errors[f"q_{question.key}"] = "Choose an answer."
        answers[question.key] = answer
    result = "positive" if "yes" in answers.values() else "negative"
    return {"result": result, "answers": answers, "instrument": policy.screening.key}


def validate_entry(episode: Episode, view: StepView, *, outcome: str, done_at: datetime | None,
                   recorded_at: datetime, raw_evidence: dict, reason: str) -> dict:
    """The cleaned evidence, or EntryInvalid naming every problem by form field."""
    policy = policy_of(episode.policy_version)
    spec = view.spec
    errors: dict[str, str] = {}
    if episode.end_reason == "missing_again" or view.row.closed_reason:
        errors["outcome"] = ("This step was closed when the child went missing again. Record it on "
                             "the new episode.")
    allowed = allowed_outcomes(episode, spec)
    if outcome not in allowed:
        if outcome == "not_applicable":
            errors["outcome"] = ("'Not applicable' is not allowed for this step"
                                 + (" after a positive screen." if outcome in spec.outcomes else "."))
        else:
            errors["outcome"] = "Choose what happened."
    if done_at is None:
        errors["done_at"] = "Give the date and time it was done."
    elif done_at > recorded_at:
        errors["done_at"] = "This is later than the time on your phone. Give when it actually happened."
    if outcome in ("attempted", "not_applicable") and not reason.strip():
        errors["reason"] = ("Say why it could not be done." if outcome == "attempted"
                            else "Say why it does not apply.")
    evidence: dict = {}
    if spec.screening and outcome == "done":
        evidence = _clean_screening(policy, raw_evidence, errors)
    else:
        for f in spec.evidence:
            value, problem = _check_field(f, raw_evidence.get(f.name), policy)
            if problem:
                errors[f"ev_{f.name}"] = problem
                continue
            required = (f.required and outcome == "done") or (
                outcome == "attempted" and f.name in spec.attempted_requires)
            if required and not value:
                errors[f"ev_{f.name}"] = (f"Required: {f.label.lower()}." if outcome == "done"
                                         else f"When the report is refused, record the escalation: "
                                              f"{f.label.lower()}.")
            if value:
                evidence[f.name] = value
    if errors:
        raise EntryInvalid(errors)
    return evidence


def record_item(db_session: Session, episode: Episode, step_key: str, actor: User, *,
                outcome: str, done_at: datetime | None, recorded_at: datetime | None,
                raw_evidence: dict, reason: str, client_uuid: str,
                supersedes_id: int | None = None, clock_skew: bool | None = None
                ) -> tuple[StepEntry | None, Claim]:
    """Record one action on a step, exactly once per ``client_uuid``.

    Returns (entry, claim): for a replay of the same submission the entry is None and the claim
    holds the stored answer. Raises EntryInvalid or client_ops.OpConflict; call inside
    ``db.writing()``.
    """
    received_at = clock.now()
    if clock_skew is None:
        clock_skew = clock.skewed(recorded_at, received_at)
    recorded_at = recorded_at or received_at
    fields = {"episode": episode.id, "step": step_key, "outcome": outcome,
              "done_at": done_at, "evidence": raw_evidence, "reason": reason.strip(),
              "supersedes": supersedes_id}
    ticket = claim(db_session, client_uuid, actor, "step_entry", fields)
    if not ticket.new:
        return None, ticket
    view = view_of(episode, step_key)
    if view is None:
        raise EntryInvalid({"outcome": "This step is not part of this episode's checklist."})
    evidence = validate_entry(episode, view, outcome=outcome, done_at=done_at,
                              recorded_at=recorded_at, raw_evidence=raw_evidence, reason=reason)
    if view.spec.screening and evidence.get("result") == "disclosed":
        reason = ""  # on a disclosure only the fact and the referral date are kept: no narrative
    if supersedes_id is not None:
        old = next((e for e in view.current if e.id == supersedes_id), None)
        if old is None:
            raise EntryInvalid({"outcome": "The entry you are correcting was already corrected, "
                                           "or is not on this step."})
    stage = stage_for_entry(db_session, episode, view.spec)
    entry = StepEntry(step=view.row, review_stage=stage, outcome=outcome, done_at=done_at,
                      recorded_at=recorded_at,
                      received_at=received_at, recorded_by_id=actor.id,
                      evidence=json.dumps(evidence, sort_keys=True), reason=reason.strip(),
                      client_uuid=client_uuid, supersedes_id=supersedes_id, clock_skew=clock_skew)
    db_session.add(entry)
    db_session.flush()
    # The deadlines of steps anchored on other steps, and the summary's measured steps, read those
    # steps' entries: one query here instead of a lazy load for each.
    load_step_entries(db_session, episode)
    schedule(db_session, episode)  # steps anchored on this one get their deadline now
    refresh_summary(db_session, episode)
    store_response(db_session, client_uuid, {"entry_id": entry.id, "step": step_key})
    sensitive = {"evidence": entry.evidence} if view.spec.sensitive else {}
    record_event(db_session, actor, "checklist.record_item", "step_entry", entry.id,
                 child_id=episode.child_id,
                 changes={"step": step_key, "outcome": outcome, "done_at": done_at,
                          "supersedes_id": supersedes_id,
                          **({} if view.spec.sensitive else {"evidence_fields": sorted(evidence)})},
                 sensitive={**sensitive, "reason": reason.strip()})
    return entry, ticket
