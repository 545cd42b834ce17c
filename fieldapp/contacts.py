"""The search contact log (DESIGN §4): every contact and every attempt, never frozen.

Law-enforcement and NCMEC follow-ups and the monthly NCIC check are logged here too. The log
feeds the two monthly steps: a search contact at least once per calendar month until the child
is found, and a follow-up with law enforcement and NCMEC likewise.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from . import clock
from .audit import record_event
from .client_ops import Claim, claim, store_response
from .deadlines import monthly_windows, next_monthly_due
from .episodes import EpisodeInvalid
from .models import Episode, EpisodeStep, SearchContact, User
from .summaries import refresh as refresh_summary

RELATIONSHIPS = {"parent": "Parent", "relative": "Relative", "friend": "Friend", "school": "School",
                 "counselor": "Counselor", "provider": "Placement provider",
                 "law_enforcement": "Law enforcement", "ncmec": "NCMEC", "other": "Other"}
METHODS = {"phone": "Phone", "text": "Text message", "in_person": "In person", "email": "Email",
           "social_media": "Social media", "online": "Online portal", "letter": "Letter"}
PURPOSES = {"search": "Search for the child", "follow_up": "Law-enforcement or NCMEC follow-up",
            "ncic_check": "Monthly NCIC check"}
# Which monthly step each purpose serves.
STEP_FOR_PURPOSE = {"search": "search_contacts", "follow_up": "follow_up_le_ncmec",
                    "ncic_check": "follow_up_le_ncmec"}


def contact_problems(episode: Episode, *, person: str, relationship: str, method: str,
                     contacted_at: datetime | None, recorded_at: datetime, purpose: str,
                     reached: str) -> dict[str, str]:
    errors = {}
    if not person.strip():
        errors["person"] = "Name the person or office contacted."
    if relationship not in RELATIONSHIPS:
        errors["relationship"] = "Choose the relationship."
    if method not in METHODS:
        errors["method"] = "Choose how you made contact."
    if purpose not in PURPOSES:
        errors["purpose"] = "Choose what the contact was for."
    if reached not in ("reached", "attempt"):
        errors["reached"] = "Say whether you reached the person or only tried."
    if contacted_at is None:
        errors["contacted_at"] = "Give the date and time of the contact."
    elif contacted_at > recorded_at:
        errors["contacted_at"] = "This is later than the time on your phone."
    elif contacted_at < episode.discovered_at:
        errors["contacted_at"] = "This is before the child went missing."
    if episode.end_reason == "missing_again":
        errors["person"] = "This episode was closed when the child went missing again; log it on the new one."
    return errors


def log_contact(db_session: Session, episode: Episode, actor: User, *, person: str,
                relationship: str, method: str, contacted_at: datetime | None, reached: str,
                learned: str, purpose: str, client_uuid: str,
                recorded_at: datetime | None = None, clock_skew: bool | None = None
                ) -> tuple[SearchContact | None, Claim]:
    """Append a contact, exactly once per ``client_uuid``. Call inside ``db.writing()``."""
    received_at = clock.now()
    if clock_skew is None:
        clock_skew = clock.skewed(recorded_at, received_at)
    recorded_at = recorded_at or received_at
    fields = {"episode": episode.id, "person": person.strip(), "relationship": relationship,
              "method": method, "contacted_at": contacted_at, "reached": reached,
              "learned": learned.strip(), "purpose": purpose}
    ticket = claim(db_session, client_uuid, actor, "search_contact", fields)
    if not ticket.new:
        return None, ticket
    errors = contact_problems(episode, person=person, relationship=relationship, method=method,
                              contacted_at=contacted_at, recorded_at=recorded_at, purpose=purpose,
                              reached=reached)
    if errors:
        raise EpisodeInvalid(errors)
    contact = SearchContact(episode=episode, purpose=purpose, person=person.strip(),
                            relationship_to_child=relationship, method=method,
                            contacted_at=contacted_at, reached=reached == "reached",
                            learned=learned.strip(), recorded_by_id=actor.id,
                            recorded_at=recorded_at, received_at=received_at,
                            client_uuid=client_uuid, clock_skew=clock_skew)
    db_session.add(contact)
    db_session.flush()
    refresh_summary(db_session, episode)
    store_response(db_session, client_uuid, {"contact_id": contact.id})
    record_event(db_session, actor, "contact.log", "search_contact", contact.id,
                 child_id=episode.child_id,
                 changes={"purpose": purpose, "relationship": relationship, "method": method,
                          "contacted_at": contacted_at, "reached": reached == "reached"},
                 sensitive={"person": person.strip(), "learned": learned.strip()})
    return contact, ticket


def _times(episode: Episode, step_key: str) -> list[datetime]:
    return [c.contacted_at for c in episode.contacts if STEP_FOR_PURPOSE[c.purpose] == step_key]


def _step(episode: Episode, step_key: str) -> EpisodeStep | None:
    return next((s for s in episode.steps if s.step_key == step_key), None)


def next_contact_due(episode: Episode, step_key: str = "search_contacts") -> datetime | None:
    """When the next monthly contact for ``step_key`` is due; None once the child is found."""
    step = _step(episode, step_key)
    if step is None or step.due_at is None or episode.located_at is not None or step.closed_reason:
        return None
    return next_monthly_due(episode.discovered_at, step.due_at, clock.now(),
                            _times(episode, step_key), clock.agency_zone())


def months_without_contact(episode: Episode, step_key: str = "search_contacts") -> list:
    """The calendar months after T0's month, until T1 (or now), that had no contact."""
    until = episode.located_at or episode.ended_at or clock.now()
    return [w for w in monthly_windows(episode.discovered_at, until, _times(episode, step_key),
                                       clock.agency_zone()) if not w.covered]
