"""Risk and prevention records, and the per-episode summary rows the compliance measures read.

After upgrading a database that already holds episodes, run ``fieldapp summaries rebuild`` once:
the summary rows are derived data, written by the app's own code, not by this migration.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa

from fieldapp.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# A copy, not an import: this migration must create the same table whatever the code says later.
MEASURED_STEPS = (
    "report_law_enforcement", "report_ncmec",
    "notify_juvenile_officer", "notify_court_representative", "notify_parents",
    "search_contacts",
    "safety_assessment", "medical_exam", "family_support_team", "trafficking_screening",
    "interview_factors", "interview_experiences",
    "supportive_services",
)
FALSE = sa.text("false")


def _recorded():
    return [sa.Column("recorded_by_id", sa.Integer, sa.ForeignKey("users.id")),
            sa.Column("recorded_at", UTCDateTime, nullable=False)]


def upgrade() -> None:
    op.create_table(
        "risk_observations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("child_id", sa.Integer, sa.ForeignKey("children.id"), nullable=False),
        sa.Column("factor", sa.String(40), nullable=False),
        sa.Column("present", sa.Boolean, nullable=False),
        sa.Column("observed_on", sa.Date, nullable=False),
        *_recorded(),
    )
    op.create_index("ix_risk_observations_child_id", "risk_observations", ["child_id"])
    op.create_table(
        "caring_adult_findings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("child_id", sa.Integer, sa.ForeignKey("children.id"), nullable=False),
        sa.Column("has_caring_adult", sa.Boolean, nullable=False),
        sa.Column("found_on", sa.Date, nullable=False),
        *_recorded(),
    )
    op.create_index("ix_caring_adult_findings_child_id", "caring_adult_findings", ["child_id"])
    op.create_table(
        "interventions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("child_id", sa.Integer, sa.ForeignKey("children.id"), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("done_on", sa.Date, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        *_recorded(),
    )
    op.create_index("ix_interventions_child_id", "interventions", ["child_id"])

    step_columns = []
    for key in MEASURED_STEPS:
        step_columns += [
            sa.Column(f"{key}_at", UTCDateTime),
            sa.Column(f"{key}_on_time", sa.Boolean, nullable=False, server_default=FALSE),
            sa.Column(f"{key}_attempted", sa.Boolean, nullable=False, server_default=FALSE),
        ]
    op.create_table(
        "episode_summaries",
        sa.Column("episode_id", sa.Integer, sa.ForeignKey("episodes.id"), primary_key=True),
        sa.Column("child_id", sa.Integer, sa.ForeignKey("children.id"), nullable=False),
        sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id")),
        sa.Column("t0", UTCDateTime, nullable=False),
        sa.Column("t0_month", sa.String(7), nullable=False),
        sa.Column("t1", UTCDateTime),
        sa.Column("t2", UTCDateTime),
        sa.Column("ended_at", UTCDateTime),
        sa.Column("end_reason", sa.String(30)),
        sa.Column("missing_until", UTCDateTime),
        sa.Column("missing_seconds", sa.BigInteger),
        sa.Column("first_month_ends", UTCDateTime, nullable=False),
        sa.Column("service_window_ends", UTCDateTime),
        sa.Column("months_owed_from", sa.Integer, nullable=False),
        sa.Column("months_until", sa.Integer),
        sa.Column("months_covered", sa.Integer, nullable=False, server_default=sa.text("0")),
        *step_columns,
        sa.Column("acf_prior_episode", sa.Boolean, nullable=False, server_default=FALSE),
        sa.Column("acf_many_placements", sa.Boolean, nullable=False, server_default=FALSE),
        sa.Column("acf_congregate", sa.Boolean, nullable=False, server_default=FALSE),
        sa.Column("acf_no_caring_adult", sa.Boolean, nullable=False, server_default=FALSE),
        sa.Column("acf_factors", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("mo_factors", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("intervention_before_t0", sa.Boolean, nullable=False, server_default=FALSE),
        sa.Column("visitation_plan_at_t0", sa.Boolean, nullable=False, server_default=FALSE),
        sa.Column("refreshed_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_episode_summaries_child_id", "episode_summaries", ["child_id"])
    op.create_index("ix_episode_summaries_team_id", "episode_summaries", ["team_id"])
    op.create_index("ix_episode_summaries_t0", "episode_summaries", ["t0"])


def downgrade() -> None:
    op.drop_index("ix_episode_summaries_t0", "episode_summaries")
    op.drop_index("ix_episode_summaries_team_id", "episode_summaries")
    op.drop_index("ix_episode_summaries_child_id", "episode_summaries")
    op.drop_table("episode_summaries")
    for table in ("interventions", "caring_adult_findings", "risk_observations"):
        op.drop_index(f"ix_{table}_child_id", table)
        op.drop_table(table)
