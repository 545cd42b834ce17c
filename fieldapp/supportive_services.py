"""Supportive services after a return: each recorded with its type and start date."""
from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from . import clock
from .audit import record_event
from .client_ops import Claim, claim, store_response
from .episodes import EpisodeInvalid
from .models import Episode, SupportiveService, User

SERVICE_TYPES = {"counseling": "Counseling or therapy", "substance_use": "Substance-use treatment",
                 "trafficking_services": "Trafficking-specific services", "mentoring": "Mentoring",
                 "education": "Education support", "health": "Health care", "other": "Other"}


def record_service(db_session: Session, episode: Episode, actor: User, *, service_type: str,
                   started_on: date | None, note: str, client_uuid: str) -> tuple[SupportiveService | None, Claim]:
    fields = {"episode": episode.id, "service_type": service_type, "started_on": started_on,
              "note": note.strip()}
    ticket = claim(db_session, client_uuid, actor, "supportive_service", fields)
    if not ticket.new:
        return None, ticket
    errors = {}
    if service_type not in SERVICE_TYPES:
        errors["service_type"] = "Choose the service."
    if started_on is None:
        errors["started_on"] = "Give the start date (YYYY-MM-DD)."
    elif episode.located_at and started_on < episode.located_at.astimezone(clock.agency_zone()).date():
        errors["started_on"] = "This is before the child was found."
    if episode.located_at is None:
        errors["service_type"] = "Services are recorded once the child is found."
    if errors:
        raise EpisodeInvalid(errors)
    service = SupportiveService(episode=episode, service_type=service_type, started_on=started_on,
                                note=note.strip(), recorded_by_id=actor.id, recorded_at=clock.now(),
                                client_uuid=client_uuid)
    db_session.add(service)
    db_session.flush()
    store_response(db_session, client_uuid, {"service_id": service.id})
    record_event(db_session, actor, "service.record", "supportive_service", service.id,
                 child_id=episode.child_id,
                 changes={"service_type": service_type, "started_on": started_on},
                 sensitive={"note": note.strip()})
    return service, ticket
