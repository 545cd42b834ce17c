"""Policy versions, episodes, checklist steps and entries, contacts, client ops.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa

from fieldapp.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(80), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("effective_from", sa.Date, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("installed_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "episodes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("child_id", sa.Integer, sa.ForeignKey("children.id"), nullable=False),
        sa.Column("policy_version_id", sa.Integer, sa.ForeignKey("policy_versions.id"), nullable=False),
        sa.Column("previous_episode_id", sa.Integer, sa.ForeignKey("episodes.id")),
        sa.Column("discovered_at", UTCDateTime, nullable=False),
        sa.Column("discovered_by_role", sa.String(30), nullable=False),
        sa.Column("discovered_by_name", sa.String(160), nullable=False),
        sa.Column("how_missing", sa.String(20), nullable=False),
        sa.Column("last_seen_at", UTCDateTime),
        sa.Column("last_seen_place", sa.Text, nullable=False, server_default=""),
        sa.Column("located_at", UTCDateTime),
        sa.Column("located_where", sa.String(20)),
        sa.Column("located_place", sa.Text),
        sa.Column("located_by", sa.String(160)),
        sa.Column("returned_at", UTCDateTime),
        sa.Column("return_placement_id", sa.Integer, sa.ForeignKey("placements.id")),
        sa.Column("end_reason", sa.String(30)),
        sa.Column("ended_at", UTCDateTime),
        sa.Column("court_order_date", sa.Date),
        sa.Column("opened_by_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("end_reason IS NULL OR end_reason IN "
                           "('returned_to_care','released_from_custody','missing_again')",
                           name="ck_episodes_end_reason"),
    )
    op.create_index("ix_episodes_child_id", "episodes", ["child_id"])
    op.create_index("ux_episodes_one_open_per_child", "episodes", ["child_id"], unique=True,
                    sqlite_where=sa.text("ended_at IS NULL"),
                    postgresql_where=sa.text("ended_at IS NULL"))
    op.create_table(
        "episode_steps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("episode_id", sa.Integer, sa.ForeignKey("episodes.id"), nullable=False),
        sa.Column("step_key", sa.String(60), nullable=False),
        sa.Column("checklist", sa.String(10), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("raised_at", UTCDateTime, nullable=False),
        sa.Column("due_at", UTCDateTime),
        sa.Column("closed_reason", sa.String(30)),
        sa.Column("closed_at", UTCDateTime),
    )
    op.create_index("ux_episode_steps_key", "episode_steps", ["episode_id", "step_key"], unique=True)
    op.create_index("ix_episode_steps_due", "episode_steps", ["due_at"])
    op.create_table(
        "step_entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("episode_step_id", sa.Integer, sa.ForeignKey("episode_steps.id"), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("done_at", UTCDateTime, nullable=False),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("recorded_by_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("evidence", sa.Text, nullable=False, server_default="{}"),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("client_uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("supersedes_id", sa.Integer, sa.ForeignKey("step_entries.id"), unique=True),
        sa.Column("clock_skew", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("imported", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.CheckConstraint("outcome IN ('done','attempted','not_applicable')",
                           name="ck_step_entries_outcome"),
    )
    op.create_index("ix_step_entries_episode_step_id", "step_entries", ["episode_step_id"])
    op.create_table(
        "info_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("episode_id", sa.Integer, sa.ForeignKey("episodes.id"), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("info_received_at", UTCDateTime, nullable=False),
        sa.Column("recorded_by_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_info_events_episode_id", "info_events", ["episode_id"])
    op.create_table(
        "search_contacts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("episode_id", sa.Integer, sa.ForeignKey("episodes.id"), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("person", sa.String(160), nullable=False),
        sa.Column("relationship_to_child", sa.String(30), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("contacted_at", UTCDateTime, nullable=False),
        sa.Column("reached", sa.Boolean, nullable=False),
        sa.Column("learned", sa.Text, nullable=False, server_default=""),
        sa.Column("recorded_by_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("client_uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("clock_skew", sa.Boolean, nullable=False, server_default=sa.text("false")),
    )
    op.create_index("ix_search_contacts_episode_id", "search_contacts", ["episode_id"])
    op.create_table(
        "client_ops",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("client_ops", "search_contacts", "info_events",
                  "step_entries", "episode_steps", "episodes", "policy_versions"):
        op.drop_table(table)
