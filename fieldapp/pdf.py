"""Printed records of an episode (issue 4): one set of data for the HTML page and for the PDF.

``episode_record`` gathers, once, everything the record shows, in the shape the template reads:
the child's minimal identifiers, the policy and its hash, the clocks, every step with its four
clocks, flags and deadline status, the contact log, the interview categories, the screening
result, the supportive services and the review section. Its SHA-256 is taken over canonical JSON
of that content, so two copies of a record can be compared; the generation line sits beside it.

``render_pdf`` lays the rendered page out with WeasyPrint. It is slow: call it outside any write
transaction (DESIGN §9). WeasyPrint loads only the app's own static files, never the network.
"""
from __future__ import annotations

import hashlib
import json
import mimetypes
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flask import current_app, url_for
from sqlalchemy.orm import object_session
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse
from werkzeug.security import safe_join

from . import access, clock
from .assets import file_name
from .checklists import (LATE_ENTRY_AFTER, OUTCOME_LABELS, SCREEN_ANSWERS, StepView,
                         deadline_status, evidence_of, late_entry, step_views)
from .contacts import METHODS, PURPOSES, RELATIONSHIPS, months_without_contact
from .episodes import DISCOVERED_BY, END_REASONS, HOW_MISSING, INFO_EVENTS, LOCATED_WHERE
from .models import Episode, StepEntry, User
from .policy import Policy, Step, policy_of
from .reviews import stages_of
from .stages import STAGES
from .vocabulary import PLACEMENT_SETTINGS, ROLES

WITHHELD = "withheld: case team only"
STATE_LABELS = {"open": "To do", "done": "Done", "attempted": "Tried, could not",
                "not_applicable": "Not applicable", "closed": "Closed: missing again"}
BASIS_LABELS = {"law": "Law", "policy": "Policy", "agency_target": "Agency target"}
INTERVIEW_STEPS = ("interview_factors", "interview_experiences")
SERVICES_STEP = "supportive_services"
# Free text that could carry the child's account. After a disclosure none of it is printed for the
# sensitive steps, so that nothing can taint the forensic interview (DESIGN §4).
NARRATIVE_TYPES = ("text", "textarea")
# WeasyPrint resolves the page's relative links against this base. The .invalid name can never
# resolve, and StaticFiles refuses every other address anyway.
BASE_URL = "https://fieldapp.invalid/"
LOCAL_TIME = "%a %-d %b %Y, %H:%M %Z"  # as the pages' ``local`` filter shows times


# --- the record's data ----------------------------------------------------------------------

def episode_record(episode: Episode, viewer: User) -> dict:
    """Everything the printed record of ``episode`` shows to ``viewer``, built once.

    Times are aware UTC datetimes (the template shows them in the agency's zone); sensitive steps
    are withheld unless the viewer is on the child's case team (DESIGN §9).
    """
    db_session = object_session(episode)
    now = clock.now()
    policy = policy_of(episode.policy_version)
    child = episode.child
    sensitive = access.can_see_sensitive(db_session, viewer, child)
    views = step_views(episode)
    disclosed = _disclosed(views)
    review = review_section(episode)
    record = {
        "agency": current_app.config["AGENCY_NAME"],
        "zone": current_app.config["TIMEZONE"],
        "episode_id": episode.id,
        "child": {"name": child.full_name, "case_id": child.case_id,
                  "date_of_birth": child.date_of_birth, "county": child.county},
        "policy": {"key": episode.policy_version.key, "title": policy.title,
                   "sha256": episode.policy_version.sha256},
        "clocks": _clocks(episode),
        "checklists": [
            {"key": name, "heading": heading,
             "steps": [_step(v, policy, now, sensitive, disclosed)
                       for v in views if v.spec.checklist == name]}
            for name, heading in (("missing", "Missing checklist"), ("return", "Return checklist"))
            if any(v.spec.checklist == name for v in views)],
        "contacts": [_contact(c) for c in sorted(episode.contacts,
                                                 key=lambda c: (c.contacted_at, c.id))],
        "interviews": [_interview(v, policy, sensitive) for v in views
                       if v.spec.key in INTERVIEW_STEPS],
        "screening": _screening(views, policy, sensitive, disclosed),
        "services": _services(views),
        "review": review,
        "draft": not (review["stages"] and all(s["state"] == "approved"
                                               for s in review["stages"] + review["addenda"])),
    }
    record["sha256"] = record_sha256(record)
    record["generated"] = {"at": now, "by": viewer.display_name, "role": ROLES[viewer.role]}
    return record


def review_section(episode: Episode) -> dict:
    """The review history, signature blocks and addenda of the episode's stages.

    Each of ``stages`` and ``addenda`` is a list of {"label", "state", "history": [{"at",
    "action", "by", "comment"}], "signature": None or {"name", "role", "at", "sha256"}}, which
    the template prints; addenda come after the stages they correct.
    """
    out = {"stages": [], "addenda": []}
    for stage in stages_of(object_session(episode), episode):
        label = STAGES[stage.stage] + (" addendum" if stage.addendum_of_id else "")
        history = [{"at": e.at, "action": REVIEW_ACTIONS[e.action], "by": e.actor.display_name,
                    "comment": e.comment} for e in stage.events]
        signature = ({"name": stage.approved_name, "role": stage.approved_role,
                      "at": stage.approved_at, "sha256": stage.content_sha256}
                     if stage.state == "approved" else None)
        out["addenda" if stage.addendum_of_id else "stages"].append(
            {"label": label, "state": stage.state, "history": history, "signature": signature})
    return out


REVIEW_ACTIONS = {"submit": "submitted", "return": "sent back", "approve": "approved"}


def _disclosed(views: list[StepView]) -> bool:
    """Whether any screening entry, even one corrected since, recorded a disclosure."""
    screen = next((v for v in views if v.spec.screening), None)
    return screen is not None and any(evidence_of(e).get("result") == "disclosed"
                                      for e in screen.row.entries)


def _clocks(episode: Episode) -> dict:
    placement = next((p for p in episode.child.placements if p.id == episode.return_placement_id),
                     None)
    previous = episode.previous_episode
    return {
        "discovered_at": episode.discovered_at,
        "discovered_by": f"{episode.discovered_by_name} "
                         f"({DISCOVERED_BY.get(episode.discovered_by_role, episode.discovered_by_role)})",
        "how_missing": HOW_MISSING.get(episode.how_missing, episode.how_missing),
        "last_seen_at": episode.last_seen_at,
        "last_seen_place": episode.last_seen_place,
        "located_at": episode.located_at,
        "located_where": LOCATED_WHERE.get(episode.located_where or "", ""),
        "located_place": episode.located_place or "",
        "located_by": episode.located_by or "",
        "returned_at": episode.returned_at,
        "return_placement": (f"{placement.provider_name} ({PLACEMENT_SETTINGS[placement.setting]})"
                             if placement else ""),
        "end_reason": END_REASONS.get(episode.end_reason or "", ""),
        "ended_at": episode.ended_at,
        "court_order_date": episode.court_order_date,
        "previous_episode_at": previous.discovered_at if previous else None,
        "information": [{"label": INFO_EVENTS.get(e.kind, e.kind), "at": e.info_received_at}
                        for e in episode.info_events],
    }


def _step(view: StepView, policy: Policy, now: datetime, sensitive: bool, disclosed: bool) -> dict:
    spec = view.spec
    withheld = spec.sensitive and not sensitive
    current = {e.id for e in view.current}
    step = {
        "key": spec.key, "number": view.number, "title": spec.title,
        "basis": spec.basis, "basis_label": BASIS_LABELS[spec.basis],
        "legal_basis": spec.legal_basis,
        "state": view.state, "state_label": STATE_LABELS[view.state],
        "due_at": view.row.due_at, "deadline": deadline_status(view, now),
        "withheld": withheld,
        "entries": [_entry(e, spec, policy, withheld=withheld,
                           quiet=disclosed and spec.sensitive, superseded=e.id not in current)
                    for e in view.row.entries],
        "contact_log": None,
    }
    if spec.contact_log:
        gaps = months_without_contact(view.row.episode, spec.key)
        step["contact_log"] = {
            "count": len(view.contact_times),
            "first_at": view.contact_times[0] if view.contact_times else None,
            "months_without": [w.first_day.strftime("%B %Y") for w in gaps],
        }
    return step


def _entry(entry: StepEntry, spec: Step, policy: Policy, *, withheld: bool, quiet: bool,
           superseded: bool) -> dict:
    """One entry with its clocks and flags. ``quiet``: after a disclosure, no free text."""
    evidence, reason = [], entry.reason
    if withheld:
        reason = ""
    elif spec.screening:
        evidence = [{"label": "Result", "value": _screening_result(evidence_of(entry))}]
    else:
        values = evidence_of(entry)
        for f in spec.evidence:
            if not values.get(f.name) or (quiet and f.type in NARRATIVE_TYPES):
                continue
            evidence.append({"label": f.label, "value": _evidence_value(f, values[f.name], policy)})
    if quiet:
        reason = ""
    return {
        "outcome": entry.outcome, "outcome_label": OUTCOME_LABELS[entry.outcome],
        "done_at": entry.done_at, "recorded_at": entry.recorded_at,
        "received_at": entry.received_at,
        "recorded_by": entry.recorded_by.display_name if entry.recorded_by else "import",
        "superseded": superseded, "corrects_earlier": entry.supersedes_id is not None,
        "late_entry": late_entry(entry), "clock_skew": bool(entry.clock_skew),
        "imported": bool(entry.imported),
        "reason": reason, "withheld": withheld, "evidence": evidence,
        "narrative_omitted": quiet and not withheld,
    }


def _evidence_value(field, value, policy: Policy):
    if field.type == "categories":
        labels = {c.key: c.label for c in policy.categories[field.options_from]}
        return "; ".join(labels.get(key, key) for key in value)
    if field.type == "datetime":  # stored as UTC ISO-8601; shown like every other time
        return datetime.fromisoformat(value).astimezone(clock.agency_zone()).strftime(LOCAL_TIME)
    return value


def _screening_result(evidence: dict) -> str:
    if evidence.get("result") == "disclosed":
        return ("disclosed, interview stopped, referred to a CAC on "
                f"{evidence.get('cac_referral_date', 'an unrecorded date')}")
    return evidence.get("result", "").capitalize()


def _contact(contact) -> dict:
    return {
        "at": contact.contacted_at, "person": contact.person,
        "relationship": RELATIONSHIPS.get(contact.relationship_to_child, contact.relationship_to_child),
        "method": METHODS.get(contact.method, contact.method),
        "purpose": PURPOSES.get(contact.purpose, contact.purpose),
        "reached": "Reached" if contact.reached else "Attempt",
        "learned": contact.learned,
        "recorded_by": contact.recorded_by.display_name if contact.recorded_by else "import",
        "recorded_at": contact.recorded_at, "received_at": contact.received_at,
        "late_entry": contact.recorded_at - contact.contacted_at > LATE_ENTRY_AFTER,
        "clock_skew": bool(contact.clock_skew),
    }


def _interview(view: StepView, policy: Policy, sensitive: bool) -> dict:
    """The categories of an interview (labels only, never the notes)."""
    interview = {"title": view.spec.title, "withheld": view.spec.sensitive and not sensitive,
                 "categories": None}
    latest = view.latest
    field = next((f for f in view.spec.evidence if f.type == "categories"), None)
    if not interview["withheld"] and field and latest is not None and latest.outcome == "done":
        labels = {c.key: c.label for c in policy.categories[field.options_from]}
        interview["categories"] = [labels.get(k, k) for k in evidence_of(latest).get(field.name, [])]
    return interview


def _screening(views: list[StepView], policy: Policy, sensitive: bool,
               disclosed: bool) -> dict | None:
    """The screening result: after a disclosure only the fact, the stop and the CAC referral."""
    view = next((v for v in views if v.spec.screening), None)
    if view is None:
        return None
    screen = {"instrument": policy.screening.title, "demonstration": policy.screening.demonstration,
              "withheld": view.spec.sensitive and not sensitive, "result": None, "answers": [],
              "attempted_reason": ""}
    latest = view.latest
    if screen["withheld"] or latest is None:
        return screen
    if latest.outcome != "done":
        screen["attempted_reason"] = "" if disclosed else latest.reason
        return screen
    evidence = evidence_of(latest)
    screen["result"] = _screening_result(evidence)
    if evidence.get("result") != "disclosed":
        answers = evidence.get("answers", {})
        screen["answers"] = [{"question": q.text, "answer": SCREEN_ANSWERS.get(answers.get(q.key), "")}
                             for q in policy.screening.questions if q.key in answers]
    return screen


def _services(views: list[StepView]) -> list[dict]:
    view = next((v for v in views if v.spec.key == SERVICES_STEP), None)
    if view is None:
        return []
    return [{"service": evidence_of(e).get("service", ""),
             "start_date": evidence_of(e).get("start_date", ""),
             "provider": evidence_of(e).get("provider", ""),
             "outcome_label": OUTCOME_LABELS[e.outcome], "reason": e.reason,
             "done_at": e.done_at}
            for e in view.current]


# --- the record's hash ----------------------------------------------------------------------

def _json_value(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not part of a record")


def canonical_json(record: dict) -> bytes:
    """The record's content (without its hash and generation line) as canonical JSON: sorted
    keys, no spaces, UTC ISO-8601 times."""
    content = {k: v for k, v in record.items() if k not in ("sha256", "generated")}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_value).encode()


def record_sha256(record: dict) -> str:
    return hashlib.sha256(canonical_json(record)).hexdigest()


# --- the PDF --------------------------------------------------------------------------------

class StaticFiles(URLFetcher):
    """A WeasyPrint fetcher that serves the app's static files from disk and refuses anything
    else: no network, no file: URLs, nothing outside the static folder. ``extra`` maps addresses
    under BASE_URL to (bytes, content type) made for this one document: a photo, a chart."""

    def __init__(self, folder: str, prefix: str, extra: dict[str, tuple[bytes, str]] | None = None):
        super().__init__(fail_on_errors=False)
        self.folder, self.prefix, self.extra = folder, prefix, extra or {}

    def fetch(self, url, headers=None):
        if url in self.extra:
            data, content_type = self.extra[url]
            return URLFetcherResponse(url, data, {"Content-Type": content_type})
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}/"
        if origin != BASE_URL or not parts.path.startswith(self.prefix):
            raise ValueError(f"only the app's static files are loaded, not {url}")
        # Pages link static files by their fingerprinted names (fieldapp/assets.py).
        requested = unquote(parts.path[len(self.prefix):])
        path = safe_join(self.folder, file_name(self.folder, requested))
        if path is None or not Path(path).is_file():
            raise FileNotFoundError(f"no static file at {url}")
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return URLFetcherResponse(url, Path(path).read_bytes(), {"Content-Type": content_type})


def static_files(extra: dict[str, tuple[bytes, str]] | None = None) -> StaticFiles:
    return StaticFiles(current_app.static_folder, url_for("static", filename=""), extra)


def render_pdf(html: str, extra: dict[str, tuple[bytes, str]] | None = None) -> bytes:
    """The PDF of a rendered page, with ``extra`` files (see StaticFiles). Slow: never inside a
    write transaction."""
    return HTML(string=html, base_url=BASE_URL, url_fetcher=static_files(extra)).write_pdf()
