"""The episodes behind a figure, as a supervisor sees them or, de-identified, as an auditor does.

An auditor's row holds a stable pseudonym instead of the episode, no name and no case id, and
T0's month instead of its time (DESIGN §9: auditors read de-identified drill-downs only).
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Child, Team
from ..models.summaries import episode_summaries as S


@dataclass(frozen=True)
class DrillRow:
    episode_id: int | None  # None when de-identified
    pseudonym: str
    child_name: str
    case_id: str
    t0: datetime | None
    t0_month: str
    end_reason: str
    team: str


def _keyed(label: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, label.encode(), hashlib.sha256).hexdigest()[:10]


def pseudonym(episode_id: int) -> str:
    """Stable for as long as the secret key is, and not reversible without it."""
    return "E-" + _keyed(f"episode:{episode_id}")


def child_pseudonym(case_id: str) -> str:
    """A child's stand-in for the case id, made the same way: stable, not reversible."""
    return "C-" + _keyed(f"case:{case_id}")


def drill_rows(db_session: Session, episode_ids: list[int], deidentified: bool) -> list[DrillRow]:
    rows = db_session.execute(
        select(S.c.episode_id, S.c.t0, S.c.t0_month, S.c.end_reason, Team.name,
               Child.first_name, Child.last_name, Child.case_id)
        .join(Child, Child.id == S.c.child_id).outerjoin(Team, Team.id == S.c.team_id)
        .where(S.c.episode_id.in_(episode_ids)).order_by(S.c.t0, S.c.episode_id)).all()
    found = []
    for r in rows:
        if deidentified:
            found.append(DrillRow(None, pseudonym(r.episode_id), "", "", None, r.t0_month,
                                  r.end_reason or "open", r.name or ""))
        else:
            found.append(DrillRow(r.episode_id, pseudonym(r.episode_id),
                                  f"{r.first_name} {r.last_name}", r.case_id, r.t0, r.t0_month,
                                  r.end_reason or "open", r.name or ""))
    return found


# The drill-down as a CSV download: the columns the page shows, and no more.
CSV_COLUMNS = ("episode", "episode_id", "child", "case_id", "t0", "t0_month", "end", "team")
DEIDENTIFIED_CSV_COLUMNS = ("episode", "t0_month", "end", "team")


def csv_columns(deidentified: bool) -> tuple[str, ...]:
    return DEIDENTIFIED_CSV_COLUMNS if deidentified else CSV_COLUMNS


def csv_rows(rows: list[DrillRow]) -> list[dict]:
    """The rows as the CSV writer takes them; a de-identified row has nothing more to drop."""
    return [{"episode": r.pseudonym, "episode_id": r.episode_id, "child": r.child_name,
             "case_id": r.case_id, "t0": r.t0.isoformat() if r.t0 else "",
             "t0_month": r.t0_month, "end": r.end_reason, "team": r.team} for r in rows]
