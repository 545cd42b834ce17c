"""Risk and prevention records (DESIGN §5): individual risk factors, caring-adult findings and
interventions. Each is appended with the date it became true, so risk can be evaluated at any
past moment, in particular at an episode's T0."""
from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, UTCDateTime

if TYPE_CHECKING:  # for the annotations; SQLAlchemy resolves them by name
    from .people import User


class RiskObservation(Base):
    """A Missouri individual factor observed present (or, later, no longer present) on a date."""

    __tablename__ = "risk_observations"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    factor: Mapped[str] = mapped_column(String(40))
    present: Mapped[bool] = mapped_column(Boolean)
    observed_on: Mapped[date] = mapped_column(Date)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    recorded_by: Mapped[User | None] = relationship()


class CaringAdultFinding(Base):
    """A recorded finding on whether the child has a caring-adult relationship."""

    __tablename__ = "caring_adult_findings"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    has_caring_adult: Mapped[bool] = mapped_column(Boolean)
    found_on: Mapped[date] = mapped_column(Date)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    recorded_by: Mapped[User | None] = relationship()


class Intervention(Base):
    """Something done to lower a child's risk of going missing, with its date."""

    __tablename__ = "interventions"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    done_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, server_default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    recorded_by: Mapped[User | None] = relationship()
