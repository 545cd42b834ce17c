"""Review by stage: stages, their history and comments, supervisors' monthly contact checks,
and the triggers that freeze the entries of an approved stage.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa

from fieldapp.db import UTCDateTime
from fieldapp.immutability import create_triggers, drop_triggers

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_stages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("episode_id", sa.Integer, sa.ForeignKey("episodes.id"), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("addendum_of_id", sa.Integer, sa.ForeignKey("review_stages.id")),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("submitted_at", UTCDateTime),
        sa.Column("submitted_by_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("open_step_reasons", sa.Text, nullable=False, server_default="{}"),
        sa.Column("approved_at", UTCDateTime),
        sa.Column("approved_by_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("approved_name", sa.String(120)),
        sa.Column("approved_role", sa.String(20)),
        sa.Column("content_sha256", sa.String(64)),
        sa.CheckConstraint("stage IN ('initial_response','return','closure')", name="ck_review_stages_stage"),
        sa.CheckConstraint("state IN ('in_progress','submitted','returned','approved')",
                           name="ck_review_stages_state"),
    )
    op.create_index("ix_review_stages_episode_id", "review_stages", ["episode_id"])
    op.create_table(
        "review_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("review_stage_id", sa.Integer, sa.ForeignKey("review_stages.id"), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("step_comments", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_review_events_review_stage_id", "review_events", ["review_stage_id"])
    op.create_table(
        "contact_checks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("episode_id", sa.Integer, sa.ForeignKey("episodes.id"), nullable=False),
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("checked_by_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("checked_at", UTCDateTime, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ux_contact_checks_month", "contact_checks", ["episode_id", "month"], unique=True)
    with op.batch_alter_table("step_entries") as batch:
        batch.add_column(sa.Column("review_stage_id", sa.Integer, nullable=True))
        batch.create_foreign_key("fk_step_entries_review_stage", "review_stages",
                                 ["review_stage_id"], ["id"])
    op.create_index("ix_step_entries_review_stage_id", "step_entries", ["review_stage_id"])
    create_triggers(op)


def downgrade() -> None:
    drop_triggers(op)
    op.drop_index("ix_step_entries_review_stage_id", "step_entries")
    with op.batch_alter_table("step_entries") as batch:
        batch.drop_constraint("fk_step_entries_review_stage", type_="foreignkey")
        batch.drop_column("review_stage_id")
    op.drop_table("contact_checks")
    op.drop_table("review_events")
    op.drop_table("review_stages")
