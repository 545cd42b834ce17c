"""What identifies a child to the police: the profile, the photos, and a last sighting's details."""
from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from ..db import Base, UTCDateTime

if TYPE_CHECKING:  # for the annotations; SQLAlchemy resolves them by name
    from .children import Child
    from .people import User


class IdentificationProfile(Base):
    """One row per child. The sections and their labels are declared in ``identification.SECTIONS``;
    each section has its own last-updated time and author."""

    __tablename__ = "identification_profiles"
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), primary_key=True)
    # description
    race_ethnicity: Mapped[str | None] = mapped_column(String(120))
    height: Mapped[str | None] = mapped_column(String(40))
    weight: Mapped[str | None] = mapped_column(String(40))
    hair_colour: Mapped[str | None] = mapped_column(String(60))
    eye_colour: Mapped[str | None] = mapped_column(String(60))
    complexion: Mapped[str | None] = mapped_column(String(60))
    # marks
    tattoos: Mapped[str | None] = mapped_column(Text)
    scars: Mapped[str | None] = mapped_column(Text)
    piercings: Mapped[str | None] = mapped_column(Text)
    # endangerment, 42 U.S.C. 671(a)(35)(B): sensitive, the case team's alone (DESIGN §9)
    pregnancy: Mapped[str | None] = mapped_column(Text)
    medications: Mapped[str | None] = mapped_column(Text)
    suicidal: Mapped[str | None] = mapped_column(Text)
    trafficking: Mapped[str | None] = mapped_column(Text)
    health_risks: Mapped[str | None] = mapped_column(Text)
    # whereabouts
    associates: Mapped[str | None] = mapped_column(Text)
    places: Mapped[str | None] = mapped_column(Text)
    phones: Mapped[str | None] = mapped_column(Text)
    social_media: Mapped[str | None] = mapped_column(Text)
    # The policy asks for a new photo "whenever appearance changes" as well as on its cadence.
    appearance_changed_on: Mapped[date | None] = mapped_column(Date)

    description_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    description_updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    marks_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    marks_updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    endangerment_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    endangerment_updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    whereabouts_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    whereabouts_updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    # ``child.identification_profile`` lets a caseload flag overdue photos without a query of its
    # own per flag (the children model stays as it is).
    child: Mapped[Child] = relationship(backref=backref("identification_profile", uselist=False))


class Photo(Base):
    """An image's bytes, keyed by their SHA-256, so a copy is stored once and the audit log can
    name it without holding it. Stored only after re-encoding: no metadata survives."""

    __tablename__ = "photos"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    content_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChildPhoto(Base):
    """A photo of a child, and the day it was taken."""

    __tablename__ = "child_photos"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    photo_sha256: Mapped[str] = mapped_column(ForeignKey("photos.sha256"))
    taken_on: Mapped[date] = mapped_column(Date)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    photo: Mapped[Photo] = relationship()
    recorded_by: Mapped[User | None] = relationship()


class PacketDetails(Base):
    """What the report packet needs and the episode did not record: the clothing and the
    circumstances. The time and place of the last sighting stay on the episode itself."""

    __tablename__ = "packet_details"
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), primary_key=True)
    clothing: Mapped[str | None] = mapped_column(Text)
    circumstances: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
