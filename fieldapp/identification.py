"""The child's identification profile (issue 7): what a report to the police and NCMEC needs,
kept current before the child ever goes missing.

The sections and their fields are declared once, in ``SECTIONS``: the forms, the profile page,
the report packet and its missing-items check all read them. Endangerment (42 U.S.C.
671(a)(35)(B)) is sensitive: only the case team sees or edits it (DESIGN §9). Prior missing
episodes are not stored here: they are read from the episodes themselves.

The photo cadence (every 6 months up to age 6, yearly after, CWM Section 4 Ch. 4.1) is the
policy file's ``[photo_cadence]`` table; ``photo_due_on`` applies it.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock
from .audit import record_event
from .episodes import LOCATED_WHERE
from .errors import FieldErrors
from .models import Child, Episode, IdentificationProfile, User
from .policy import in_force_at, policy_of


@dataclass(frozen=True)
class ProfileField:
    name: str  # the column of identification_profiles
    label: str
    hint: str = ""
    max_length: int = 1000
    multiline: bool = True
    required: bool = True  # for the report packet: blank is reported as missing


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    fields: tuple[ProfileField, ...]
    sensitive: bool = False


# The agency keeps no photo current for a child whose custody has ended.
OUT_OF_CUSTODY = frozenset({"released_from_custody"})
NONE_KNOWN = ("Write “None known” rather than leave it blank, so the packet does not list it "
              "as missing.")

SECTIONS: tuple[Section, ...] = (
    Section("description", "Physical description", (
        ProfileField("race_ethnicity", "Race and ethnicity", max_length=120, multiline=False),
        ProfileField("height", "Height", "For example 5 ft 4 in", 40, False),
        ProfileField("weight", "Weight", "For example 120 lb", 40, False),
        ProfileField("hair_colour", "Hair colour", "Colour, length and style", 60, False),
        ProfileField("eye_colour", "Eye colour", max_length=60, multiline=False),
        ProfileField("complexion", "Complexion", max_length=60, multiline=False),
    )),
    Section("marks", "Tattoos, scars and piercings", (
        ProfileField("tattoos", "Tattoos", "Where on the body, and what they show. " + NONE_KNOWN,
                     500),
        ProfileField("scars", "Scars and marks", NONE_KNOWN, 500),
        ProfileField("piercings", "Piercings", NONE_KNOWN, 500),
    )),
    Section("endangerment", "Endangerment (case team only)", (
        ProfileField("pregnancy", "Pregnancy", NONE_KNOWN, 300),
        ProfileField("medications", "Prescription medications", "Name, dose, and what happens "
                     "without it. " + NONE_KNOWN, 500),
        ProfileField("suicidal", "Suicidal tendencies", NONE_KNOWN, 500),
        ProfileField("trafficking", "Vulnerability to sex trafficking", NONE_KNOWN, 500),
        ProfileField("health_risks", "Other health or risk factors", NONE_KNOWN, 500),
    ), sensitive=True),
    Section("whereabouts", "Associates, places and phones", (
        ProfileField("associates", "Known associates", "Names and how to reach them", 600,
                     required=False),
        ProfileField("places", "Places frequented", max_length=600, required=False),
        ProfileField("phones", "Phone numbers", "The child's own, and any they use", 200,
                     required=False),
        ProfileField("social_media", "Social-media handles", "Platform and handle", 300,
                     required=False),
    )),
)
SECTION_BY_KEY = {s.key: s for s in SECTIONS}


class ProfileInvalid(FieldErrors):
    pass


def sections_for(sensitive: bool) -> tuple[Section, ...]:
    """The sections a viewer may see: endangerment only for the case team."""
    return tuple(s for s in SECTIONS if sensitive or not s.sensitive)


def profile_of(db_session: Session, child: Child) -> IdentificationProfile | None:
    return db_session.get(IdentificationProfile, child.id)


def section_values(profile: IdentificationProfile | None, section: Section) -> dict[str, str]:
    return {f.name: (getattr(profile, f.name) or "") if profile else "" for f in section.fields}


def update_section(db_session: Session, child: Child, actor: User, section: Section,
                   values: dict[str, str]) -> list[str]:
    """Store one section's values (inside ``db.writing()``); returns the names of the fields that
    changed. The audit event names the section and those fields, never their values."""
    errors = {}
    cleaned = {}
    for f in section.fields:
        value = (values.get(f.name) or "").strip()
        if not f.multiline:
            value = " ".join(value.split())
        if len(value) > f.max_length:
            errors[f.name] = f"Keep it under {f.max_length} characters; it has {len(value)}."
        cleaned[f.name] = value or None
    if errors:
        raise ProfileInvalid(errors)
    profile = profile_of(db_session, child)
    if profile is None:
        profile = IdentificationProfile(child_id=child.id)
        db_session.add(profile)
    changed = [name for name, value in cleaned.items() if getattr(profile, name) != value]
    if not changed:
        return []
    for name in changed:
        setattr(profile, name, cleaned[name])
    setattr(profile, f"{section.key}_updated_at", clock.now())
    setattr(profile, f"{section.key}_updated_by_id", actor.id)
    record_event(db_session, actor, "identification.update", "child", child.id, child_id=child.id,
                 changes={"section": section.key, "fields": changed})
    return changed


def mark_appearance_changed(db_session: Session, child: Child, actor: User) -> None:
    """The child looks different now: a new photo is due, whatever the cadence says."""
    profile = profile_of(db_session, child)
    if profile is None:
        profile = IdentificationProfile(child_id=child.id)
        db_session.add(profile)
    profile.appearance_changed_on = clock.today()
    record_event(db_session, actor, "identification.appearance_changed", "child", child.id,
                 child_id=child.id)


# --- prior missing episodes -----------------------------------------------------------------

def prior_episodes(db_session: Session, child: Child, *,
                   before: Episode | None = None) -> list[dict]:
    """The child's earlier absences, newest first, each with where the child was found."""
    query = select(Episode).where(Episode.child_id == child.id)
    if before is not None:
        query = query.where(Episode.id != before.id, Episode.discovered_at <= before.discovered_at)
    return [{"missing_at": e.discovered_at, "located_at": e.located_at,
             "located_where": LOCATED_WHERE.get(e.located_where or "", ""),
             "located_place": e.located_place or "", "located_by": e.located_by or "",
             "open": e.ended_at is None}
            for e in db_session.scalars(query.order_by(Episode.discovered_at.desc(),
                                                       Episode.id.desc()))]


# --- the photo cadence ----------------------------------------------------------------------

def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or the month's last day when it is shorter (31 Aug + 6
    months is 28 or 29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def cadence_months(cadence: dict, born: date, today: date) -> int:
    """How often this child's photo is renewed today: the policy's ``months_up_to_age`` while the
    child is ``up_to_age`` or younger (in whole years), ``months_after`` from the next birthday."""
    if age_on(born, today) <= cadence["up_to_age"]:
        return cadence["months_up_to_age"]
    return cadence["months_after"]


def photo_due_on(cadence: dict, born: date, last_photo: date | None,
                 appearance_changed_on: date | None, today: date) -> date:
    """The last day the current photo is good for. With no photo, or once the appearance has
    changed since it was taken, a new one is due at once."""
    if last_photo is None or appearance_changed_on is not None:
        return today
    return add_months(last_photo, cadence_months(cadence, born, today))


def photo_overdue(cadence: dict | None, child: Child, appearance_changed_on: date | None,
                  today: date) -> bool:
    """Whether the caseload flags this child's photo. Storing a photo clears
    ``appearance_changed_on``; with no cadence installed nothing is flagged."""
    if cadence is None or child.status in OUT_OF_CUSTODY:
        return False
    if child.photo_taken_on is None or appearance_changed_on is not None:
        return True
    return today > photo_due_on(cadence, child.date_of_birth, child.photo_taken_on, None, today)


@dataclass(frozen=True)
class PhotoStatus:
    due_on: date | None  # None before any policy is installed
    overdue: bool


def photo_status(db_session: Session, child: Child) -> PhotoStatus:
    """When this child's next photo is due under the policy in force, and whether it is late."""
    cadence, today = current_cadence(db_session), clock.today()
    profile = profile_of(db_session, child)
    changed_on = profile.appearance_changed_on if profile else None
    due = (photo_due_on(cadence, child.date_of_birth, child.photo_taken_on, changed_on, today)
           if cadence else None)
    return PhotoStatus(due, photo_overdue(cadence, child, changed_on, today))


def current_cadence(db_session: Session) -> dict | None:
    """The photo cadence of the policy in force now, or None before any policy is installed."""
    version = in_force_at(db_session, clock.now())
    return policy_of(version).photo_cadence if version else None


def appearance_changes(db_session: Session, children: list[Child]) -> dict[int, date]:
    """Child id to the day their appearance was last marked changed, for one caseload page."""
    ids = [c.id for c in children]
    if not ids:
        return {}
    rows = db_session.execute(select(IdentificationProfile.child_id,
                                     IdentificationProfile.appearance_changed_on)
                              .where(IdentificationProfile.child_id.in_(ids),
                                     IdentificationProfile.appearance_changed_on.is_not(None)))
    return {child_id: day for child_id, day in rows}
