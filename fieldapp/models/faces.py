"""What the state system (FACES) last said about a child, kept to reconcile fieldapp against it."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime


class FacesArrangement(Base):
    """The living arrangement in the last roster import that gave one (a key of
    ``reconciliation.FACES_ARRANGEMENTS``), and when that import ran."""

    __tablename__ = "faces_arrangements"
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), primary_key=True)
    arrangement: Mapped[str] = mapped_column(String(40))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
