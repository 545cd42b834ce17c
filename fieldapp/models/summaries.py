"""The per-episode summary row that the compliance measures read (DESIGN §6, last paragraph).

One row per episode, rewritten by ``summaries.refresh`` in the same transaction as every write
that can change it. It is wide on purpose: each measured step has three columns (the first
evidenced time, whether that was within the deadline, whether it was only attempted), so that a
measure over a year of a national caseload is one scan with conditional sums, and no join.
"""
from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table,
                        text)

from ..db import Base, UTCDateTime

# The steps the measures read, in the order the measures name them. The migration that creates
# the table keeps its own copy of this list: a migration must not change when code does.
MEASURED_STEPS = (
    "report_law_enforcement", "report_ncmec",
    "notify_juvenile_officer", "notify_court_representative", "notify_parents",
    "search_contacts",
    "safety_assessment", "medical_exam", "family_support_team", "trafficking_screening",
    "interview_factors", "interview_experiences",
    "supportive_services",
)


def _step_columns(key: str) -> list[Column]:
    return [
        # The first evidenced done_at (within the measure's window, where it has one).
        Column(f"{key}_at", UTCDateTime),
        # Evidenced with done_at <= the step's due_at.
        Column(f"{key}_on_time", Boolean, nullable=False, server_default=text("false")),
        # Not evidenced, but an `attempted` entry stands: shown apart, never evidence.
        Column(f"{key}_attempted", Boolean, nullable=False, server_default=text("false")),
    ]


episode_summaries = Table(
    "episode_summaries", Base.metadata,
    Column("episode_id", Integer, ForeignKey("episodes.id"), primary_key=True),
    Column("child_id", Integer, ForeignKey("children.id"), nullable=False, index=True),
    # The team responsible at T0 (from the handover history), so a later reassignment does not
    # move a past episode to another team's figures.
    Column("team_id", Integer, ForeignKey("teams.id"), index=True),
    Column("t0", UTCDateTime, nullable=False),
    Column("t0_month", String(7), nullable=False),  # "YYYY-MM" in the agency's zone
    Column("t1", UTCDateTime),
    Column("t2", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("end_reason", String(30)),
    # When the whereabouts stopped being unknown: T1, or the end if the child was never found.
    Column("missing_until", UTCDateTime),
    Column("missing_seconds", BigInteger),  # empty while still missing
    Column("first_month_ends", UTCDateTime, nullable=False),  # T0 + 1 calendar month (M5)
    Column("service_window_ends", UTCDateTime),  # T2 + 6 calendar months (R2)
    # M6: calendar months as year * 12 + month - 1 in the agency's zone, so SQL only subtracts.
    Column("months_owed_from", Integer, nullable=False),
    Column("months_until", Integer),  # empty while still missing: the measure uses "now"
    Column("months_covered", Integer, nullable=False, server_default=text("0")),
    *[c for key in MEASURED_STEPS for c in _step_columns(key)],
    # Risk at T0 (DESIGN §5): the ACF factors one by one, the Missouri count, and prevention.
    Column("acf_prior_episode", Boolean, nullable=False, server_default=text("false")),
    Column("acf_many_placements", Boolean, nullable=False, server_default=text("false")),
    Column("acf_congregate", Boolean, nullable=False, server_default=text("false")),
    Column("acf_no_caring_adult", Boolean, nullable=False, server_default=text("false")),
    Column("acf_factors", Integer, nullable=False, server_default=text("0")),
    Column("mo_factors", Integer, nullable=False, server_default=text("0")),
    Column("intervention_before_t0", Boolean, nullable=False, server_default=text("false")),
    Column("visitation_plan_at_t0", Boolean, nullable=False, server_default=text("false")),
    Column("refreshed_at", UTCDateTime, nullable=False),
    Index("ix_episode_summaries_t0", "t0"),
)


class EpisodeSummary(Base):
    """ORM access to one summary row; the measures use the table's columns directly."""

    __table__ = episode_summaries
