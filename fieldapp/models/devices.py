"""Phones that sync: the last check-in of each, so supervisors can see unsent work (DESIGN §8)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, UTCDateTime
from .people import User


class DeviceCheckin(Base):
    """One row per user and phone, overwritten at each sync.

    ``held`` is what the phone still holds after that sync: its queued and quarantined
    operations, never their content."""

    __tablename__ = "device_checkins"
    __table_args__ = (
        CheckConstraint("held >= 0", name="ck_device_checkins_held"),
        Index("ux_device_checkins_device", "user_id", "device_id", unique=True),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[str] = mapped_column(String(36))
    held: Mapped[int] = mapped_column(Integer)
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime)
    device_time: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()
