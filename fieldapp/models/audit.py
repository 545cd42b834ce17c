"""The audit log's rows and its chain head."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, UTCDateTime

if TYPE_CHECKING:  # for the annotations; SQLAlchemy resolves them by name
    from .people import User


class AuditEvent(Base):
    """Who did what to which record, and when. Appended in the same transaction as the write.

    ``seq`` is gapless and ``hash`` is the HMAC-SHA256 that chains the event to the one before it
    (``audit.link_hash``); both are written only by ``audit.record_event``.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ux_audit_events_seq", "seq", unique=True),)
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(60))
    child_id: Mapped[int | None] = mapped_column(ForeignKey("children.id"), index=True)
    details: Mapped[str] = mapped_column(Text, server_default="{}")
    hash: Mapped[str] = mapped_column(String(64))

    actor: Mapped[User | None] = relationship()


class AuditHead(Base):
    """The audit chain's one head row: the last event's seq and HMAC.

    Every append locks it, so concurrent writers take their turn and the chain never forks.
    """

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="ck_audit_head_single_row"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
