"""The report packet (issue 7): what law enforcement and NCMEC need, in one tap.

``packet_data`` gathers, once, everything the packet carries and only that: the federal list of
42 U.S.C. 671(a)(35)(B) and the reporting fields of shared/policy-research.md §7 (photo and its
date, description, last sighting and clothing, endangerment, prior episodes, who to call). The
same dict feeds the page, the one-page PDF and the plain text laid out for NCMEC's online form,
and it names every required item that is still blank, so the packet says so plainly.

The packet holds endangerment details and the photo, so it is the case team's alone (DESIGN §9),
and it exists only while the episode is open.
"""
from __future__ import annotations

import base64
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock, pdf
from .audit import record_event
from .episodes import HOW_MISSING
from .errors import FieldErrors
from .identification import (SECTIONS, age_on, photo_status, prior_episodes, profile_of,
                             section_values)
from .models import ChildPhoto, Episode, PacketDetails, User
from .photos import latest_photo
from .vocabulary import SEXES

# The checklist steps whose page links to the packet (templates/checklists/_step.html).
PACKET_STEPS = ("report_law_enforcement", "report_ncmec", "report_contents")
# The PDF's photo: WeasyPrint asks the fetcher for this address, and gets the stored bytes.
PHOTO_URL = pdf.BASE_URL + "packet/photo.jpg"
PRIOR_EPISODES_SHOWN = 5  # enough history for the officer, and the page stays one page
DETAIL_LIMITS = {"last_seen_place": 500, "clothing": 600, "circumstances": 1000}


class DetailsInvalid(FieldErrors):
    pass


# --- the data -------------------------------------------------------------------------------

def _supervisors(db_session: Session, caseworker: User | None) -> list[User]:
    if caseworker is None or caseworker.team_id is None:
        return []
    return list(db_session.scalars(select(User).where(
        User.role == "supervisor", User.team_id == caseworker.team_id, User.active.is_(True))
        .order_by(User.display_name, User.id)))


def _duration(since: datetime, now: datetime) -> str:
    minutes = max(0, int((now - since).total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour")] if days else [(hours, "hour"), (minutes, "minute")]
    words = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts if n]
    return ", ".join(words) or "under a minute"


def _photo(db_session: Session, episode: Episode) -> dict | None:
    row: ChildPhoto | None = latest_photo(db_session, episode.child)
    if row is None:
        return None
    return {"sha256": row.photo_sha256, "taken_on": row.taken_on,
            "out_of_date": photo_status(db_session, episode.child).overdue}


def packet_data(db_session: Session, episode: Episode, viewer: User) -> dict:
    """Everything the packet of ``episode`` carries, built once. Times are aware UTC."""
    now = clock.now()
    today = clock.today()
    child = episode.child
    profile = profile_of(db_session, child)
    details = db_session.get(PacketDetails, episode.id)
    caseworker = child.caseworker
    supervisors = _supervisors(db_session, caseworker)
    agency_phone = current_app.config["AGENCY_24H_PHONE"]
    packet = {
        "agency": current_app.config["AGENCY_NAME"],
        "episode_id": episode.id,
        "child": {"name": child.full_name, "date_of_birth": child.date_of_birth,
                  "age": age_on(child.date_of_birth, today),
                  "sex": SEXES.get(child.sex, child.sex)},
        "photo": _photo(db_session, episode),
        "sections": [
            {"key": s.key, "title": s.title, "sensitive": s.sensitive,
             "updated_at": getattr(profile, f"{s.key}_updated_at") if profile else None,
             "items": [{"name": f.name, "label": f.label, "value": value, "required": f.required}
                       for f, value in zip(s.fields, section_values(profile, s).values())]}
            for s in SECTIONS],
        "sighting": {
            "category": HOW_MISSING.get(episode.how_missing, episode.how_missing),
            "discovered_at": episode.discovered_at,
            "last_seen_at": episode.last_seen_at,
            "last_seen_place": episode.last_seen_place or "",
            "circumstances": (details.circumstances or "") if details else "",
            "clothing": (details.clothing or "") if details else "",
        },
        "prior": prior_episodes(db_session, child, before=episode),
        "contacts": {
            "caseworker": ({"name": caseworker.display_name, "phone": caseworker.phone or ""}
                           if caseworker else None),
            "supervisors": [{"name": s.display_name, "phone": s.phone or ""} for s in supervisors],
            "agency_phone": agency_phone,
        },
    }
    packet["prior_shown"] = packet["prior"][:PRIOR_EPISODES_SHOWN]
    packet["missing"] = missing_items(packet)
    packet["sha256"] = pdf.record_sha256(packet)
    packet["generated"] = {
        "at": now, "by": viewer.display_name,
        "missing_for": _duration(episode.last_seen_at or episode.discovered_at, now),
    }
    return packet


def missing_items(packet: dict) -> list[str]:
    """The labels of the required items the packet cannot fill, in the packet's order."""
    missing = [] if packet["photo"] else ["Photo"]
    for section in packet["sections"]:
        missing += [i["label"] for i in section["items"] if i["required"] and not i["value"]]
    sighting = packet["sighting"]
    for key, label in (("last_seen_at", "Date and time last seen"),
                       ("last_seen_place", "Place last seen"),
                       ("circumstances", "Circumstances of the disappearance"),
                       ("clothing", "Clothing when last seen")):
        if not sighting[key]:
            missing.append(label)
    contacts = packet["contacts"]
    if not (contacts["caseworker"] and contacts["caseworker"]["phone"]):
        missing.append("Caseworker's phone")
    if not any(s["phone"] for s in contacts["supervisors"]):
        missing.append("Supervisor's phone")
    if not contacts["agency_phone"]:
        missing.append("Agency's 24-hour number")
    return missing


def details_unknown(episode: Episode, details: PacketDetails | None) -> bool:
    """Whether the short form should come before the packet: the episode lacks a detail of the
    last sighting that only the caseworker can give."""
    return (episode.last_seen_at is None or not episode.last_seen_place
            or details is None or not details.clothing or not details.circumstances)


# --- the short form's write -----------------------------------------------------------------

def save_details(db_session: Session, episode: Episode, actor: User, *,
                 last_seen_at: datetime | None, last_seen_raw: str, last_seen_place: str,
                 clothing: str, circumstances: str) -> list[str]:
    """Fill in what the episode did not know (inside ``db.writing()``). A time and place of the
    last sighting already on the episode are kept; the form does not offer them again."""
    errors = {}
    values = {"last_seen_place": last_seen_place.strip(), "clothing": clothing.strip(),
              "circumstances": circumstances.strip()}
    for name, limit in DETAIL_LIMITS.items():
        if len(values[name]) > limit:
            errors[name] = f"Keep it under {limit} characters; it has {len(values[name])}."
    if last_seen_raw.strip() and last_seen_at is None:
        errors["last_seen_at"] = "Give the date and time, for example 2026-03-02 14:30."
    elif last_seen_at is not None and last_seen_at > clock.now():
        errors["last_seen_at"] = "The last sighting cannot be in the future."
    elif last_seen_at is not None and last_seen_at > episode.discovered_at:
        errors["last_seen_at"] = "The child was last seen before the absence was discovered."
    if errors:
        raise DetailsInvalid(errors)
    changed = []
    if episode.last_seen_at is None and last_seen_at is not None:
        episode.last_seen_at = last_seen_at
        changed.append("last_seen_at")
    if not episode.last_seen_place and values["last_seen_place"]:
        episode.last_seen_place = values["last_seen_place"]
        changed.append("last_seen_place")
    details = db_session.get(PacketDetails, episode.id)
    if details is None:
        details = PacketDetails(episode_id=episode.id, updated_at=clock.now())
        db_session.add(details)
    for name in ("clothing", "circumstances"):
        if (getattr(details, name) or "") != values[name]:
            setattr(details, name, values[name] or None)
            changed.append(name)
    if changed:
        details.updated_at, details.updated_by_id = clock.now(), actor.id
        record_event(db_session, actor, "packet.details", "episode", episode.id,
                     child_id=episode.child_id, changes={"fields": changed})
    return changed


def record_shared(db_session: Session, episode: Episode, actor: User, packet: dict,
                  form: str) -> None:
    """The packet left the app as a PDF or as text: an audit event with its hash and how many
    required items were missing, never its content."""
    record_event(db_session, actor, f"packet.{form}", "episode", episode.id,
                 child_id=episode.child_id,
                 changes={"sha256": packet["sha256"], "missing": len(packet["missing"])})


# --- the PDF --------------------------------------------------------------------------------

def photo_data_uri(photo_bytes: bytes) -> str:
    """The photo inside the page itself, so the page needs nothing else to show it."""
    return "data:image/jpeg;base64," + base64.b64encode(photo_bytes).decode()


def render_pdf(html: str, photo_bytes: bytes | None) -> bytes:
    """The packet's PDF, its photo served at PHOTO_URL. Slow: never inside a write transaction."""
    extra = {PHOTO_URL: (photo_bytes, "image/jpeg")} if photo_bytes is not None else None
    return pdf.render_pdf(html, extra)
