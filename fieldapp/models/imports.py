"""History import (issue 6): which local row each imported record became.

One row per record of an import file, keyed on the record's kind and the id the old system gave
it. It makes re-importing a file a no-op, lets a later file refer to records of an earlier one,
and marks every imported row as imported, whatever its table.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime


class ImportKey(Base):
    __tablename__ = "import_keys"
    __table_args__ = (
        Index("ux_import_keys_source", "kind", "source_id", unique=True),
        Index("ix_import_keys_local", "kind", "local_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    source_id: Mapped[str] = mapped_column(String(100))
    local_id: Mapped[int] = mapped_column(Integer)
    # The SHA-256 of the record as the file gave it: the same id with other content is refused,
    # because a re-import never edits history.
    content_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    imported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
