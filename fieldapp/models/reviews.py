"""Review by stage (DESIGN §7): stages, their history, and the monthly contact-log checks."""
from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, UTCDateTime

if TYPE_CHECKING:  # for the annotations; SQLAlchemy resolves them by name
    from .episodes import Episode, StepEntry
    from .people import User


class ReviewStage(Base):
    """A stage of an episode under supervisor review: initial response, return or closure.

    An addendum is a stage of the same kind that points at the approved stage it corrects.
    """

    __tablename__ = "review_stages"
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), index=True)
    stage: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    addendum_of_id: Mapped[int | None] = mapped_column(ForeignKey("review_stages.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    open_step_reasons: Mapped[str] = mapped_column(Text, server_default="{}")
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_name: Mapped[str | None] = mapped_column(String(120))
    approved_role: Mapped[str | None] = mapped_column(String(20))
    content_sha256: Mapped[str | None] = mapped_column(String(64))

    episode: Mapped[Episode] = relationship()
    addendum_of: Mapped[ReviewStage | None] = relationship(remote_side="ReviewStage.id")
    entries: Mapped[list[StepEntry]] = relationship(back_populates="review_stage",
                                                    order_by="StepEntry.id")
    events: Mapped[list[ReviewEvent]] = relationship(back_populates="stage",
                                                      order_by="ReviewEvent.at, ReviewEvent.id")
    submitted_by: Mapped[User | None] = relationship(foreign_keys=[submitted_by_id])


class ReviewEvent(Base):
    """One move in a stage's review: submitted, returned (with comments on steps) or approved."""

    __tablename__ = "review_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    review_stage_id: Mapped[int] = mapped_column(ForeignKey("review_stages.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    comment: Mapped[str] = mapped_column(Text, server_default="")
    step_comments: Mapped[str] = mapped_column(Text, server_default="{}")

    stage: Mapped[ReviewStage] = relationship(back_populates="events")
    actor: Mapped[User] = relationship()


class ContactCheck(Base):
    """A supervisor's monthly check of a missing child's search contact log."""

    __tablename__ = "contact_checks"
    __table_args__ = (Index("ux_contact_checks_month", "episode_id", "month", unique=True),)
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"))
    month: Mapped[date] = mapped_column(Date)
    checked_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text, server_default="")

    checked_by: Mapped[User] = relationship()
