"""Children, their placements, visitation plans, status history, handovers and access grants."""
from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, UTCDateTime

if TYPE_CHECKING:  # for the annotations; SQLAlchemy resolves them by name
    from .people import User


class Child(Base):
    __tablename__ = "children"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[str] = mapped_column(String(40), unique=True)
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    date_of_birth: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    county: Mapped[str] = mapped_column(String(80))
    caseworker_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    photo_taken_on: Mapped[date | None] = mapped_column(Date)
    # The current status, kept equal to the newest status_changes row by status.change_status():
    # caseloads list it without walking the history.
    status: Mapped[str] = mapped_column(String(40))
    status_since: Mapped[datetime] = mapped_column(UTCDateTime)
    # Sensitive: shown to the case team only (DESIGN §9).
    medical_notes: Mapped[str | None] = mapped_column(Text)
    mental_health_notes: Mapped[str | None] = mapped_column(Text)
    trafficking_notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    caseworker: Mapped[User | None] = relationship()
    placements: Mapped[list[Placement]] = relationship(
        back_populates="child", order_by="desc(Placement.started_on), desc(Placement.id)")
    status_changes: Mapped[list[StatusChange]] = relationship(
        back_populates="child", order_by="desc(StatusChange.since), desc(StatusChange.id)")
    visitation_plans: Mapped[list[VisitationPlan]] = relationship(
        back_populates="child", order_by="desc(VisitationPlan.adopted_on), desc(VisitationPlan.id)")

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def current_placement(self) -> Placement | None:
        return next((p for p in self.placements if p.ended_on is None), None)

    @property
    def current_visitation_plan(self) -> VisitationPlan | None:
        return next((v for v in self.visitation_plans if v.ended_on is None), None)


class Placement(Base):
    __tablename__ = "placements"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    setting: Mapped[str] = mapped_column(String(40))
    provider_name: Mapped[str] = mapped_column(String(160))
    started_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    child: Mapped[Child] = relationship(back_populates="placements")


class VisitationPlan(Base):
    __tablename__ = "visitation_plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    frequency: Mapped[str] = mapped_column(String(20))
    with_whom: Mapped[str] = mapped_column(String(160))
    adopted_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    child: Mapped[Child] = relationship(back_populates="visitation_plans")


class StatusChange(Base):
    """One row of a child's append-only status history (DESIGN §2)."""

    __tablename__ = "status_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    status: Mapped[str] = mapped_column(String(40))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, server_default="")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Only for unapproved_location_known: where, with whom, and how that was checked.
    location_address: Mapped[str | None] = mapped_column(Text)
    location_adult: Mapped[str | None] = mapped_column(String(160))
    location_verified_how: Mapped[str | None] = mapped_column(Text)

    child: Mapped[Child] = relationship(back_populates="status_changes")
    set_by: Mapped[User | None] = relationship()
    location_reviews: Mapped[list[LocationReview]] = relationship(
        back_populates="status_change", order_by="LocationReview.decided_at")

    @property
    def location_review(self) -> LocationReview | None:
        return self.location_reviews[-1] if self.location_reviews else None


class LocationReview(Base):
    """A supervisor's decision on a known unapproved address; appended, never edited."""

    __tablename__ = "location_reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    status_change_id: Mapped[int] = mapped_column(ForeignKey("status_changes.id"), index=True)
    decided_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(Text, server_default="")

    status_change: Mapped[StatusChange] = relationship(back_populates="location_reviews")
    decided_by: Mapped[User] = relationship()


class Handover(Base):
    """A child handed from one caseworker to another, until the new one acknowledges it."""

    __tablename__ = "handovers"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    from_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    to_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    handed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text, server_default="")
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    child: Mapped[Child] = relationship()
    from_user: Mapped[User | None] = relationship(foreign_keys=[from_user_id])
    to_user: Mapped[User] = relationship(foreign_keys=[to_user_id])


class BreakGlassGrant(Base):
    __tablename__ = "break_glass_grants"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"))
    reason: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_break_glass_user_child", "user_id", "child_id", "expires_at"),)

    user: Mapped[User] = relationship()
    child: Mapped[Child] = relationship()
