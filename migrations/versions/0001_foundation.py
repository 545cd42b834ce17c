"""Foundation: users, teams, children, placements, status history, access grants, audit events.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa

from fieldapp.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATUS_VALUES = ("'in_placement','whereabouts_unknown','in_contact_location_unknown',"
                 "'unapproved_location_known','located_pending_return','released_from_custody'")


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(120), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(80), nullable=False, unique=True),
        sa.Column("display_name", sa.String(120), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id")),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("session_epoch", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("phone", sa.String(40)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("deactivated_at", UTCDateTime),
        sa.CheckConstraint("role IN ('caseworker','supervisor','on_call','administrator','auditor')",
                           name="ck_users_role"),
    )
    op.create_table(
        "children",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.String(40), nullable=False, unique=True),
        sa.Column("first_name", sa.String(80), nullable=False),
        sa.Column("last_name", sa.String(80), nullable=False),
        sa.Column("date_of_birth", sa.Date, nullable=False),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("county", sa.String(80), nullable=False),
        sa.Column("caseworker_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("photo_taken_on", sa.Date),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("status_since", UTCDateTime, nullable=False),
        sa.Column("medical_notes", sa.Text),
        sa.Column("mental_health_notes", sa.Text),
        sa.Column("trafficking_notes", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(f"status IN ({STATUS_VALUES})", name="ck_children_status"),
    )
    op.create_index("ix_children_caseworker_id", "children", ["caseworker_id"])
    op.create_table(
        "placements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("child_id", sa.Integer, sa.ForeignKey("children.id"), nullable=False),
        sa.Column("setting", sa.String(40), nullable=False),
        sa.Column("provider_name", sa.String(160), nullable=False),
        sa.Column("started_on", sa.Date, nullable=False),
        sa.Column("ended_on", sa.Date),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_placements_child_id", "placements", ["child_id"])
    op.create_table(
        "visitation_plans",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("child_id", sa.Integer, sa.ForeignKey("children.id"), nullable=False),
        sa.Column("frequency", sa.String(20), nullable=False),
        sa.Column("with_whom", sa.String(160), nullable=False),
        sa.Column("adopted_on", sa.Date, nullable=False),
        sa.Column("ended_on", sa.Date),
        sa.Column("recorded_by_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_visitation_plans_child_id", "visitation_plans", ["child_id"])
    op.create_table(
        "status_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("child_id", sa.Integer, sa.ForeignKey("children.id"), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("since", UTCDateTime, nullable=False),
        sa.Column("set_by_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
        sa.Column("location_address", sa.Text),
        sa.Column("location_adult", sa.String(160)),
        sa.Column("location_verified_how", sa.Text),
        sa.CheckConstraint(f"status IN ({STATUS_VALUES})", name="ck_status_changes_status"),
    )
    op.create_index("ix_status_changes_child_id", "status_changes", ["child_id"])
    op.create_table(
        "location_reviews",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("status_change_id", sa.Integer, sa.ForeignKey("status_changes.id"), nullable=False),
        sa.Column("decided_by_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("decided_at", UTCDateTime, nullable=False),
        sa.Column("approved", sa.Boolean, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_location_reviews_status_change_id", "location_reviews", ["status_change_id"])
    op.create_table(
        "handovers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("child_id", sa.Integer, sa.ForeignKey("children.id"), nullable=False),
        sa.Column("from_user_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("to_user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("by_user_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("handed_at", UTCDateTime, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("acknowledged_at", UTCDateTime),
    )
    op.create_index("ix_handovers_child_id", "handovers", ["child_id"])
    op.create_index("ix_handovers_to_user_id", "handovers", ["to_user_id"])
    op.create_table(
        "break_glass_grants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("child_id", sa.Integer, sa.ForeignKey("children.id"), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("granted_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_break_glass_user_child", "break_glass_grants",
                    ["user_id", "child_id", "expires_at"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("failed_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_login_failures_lookup", "login_failures", ["kind", "key", "failed_at"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("entity", sa.String(40), nullable=False),
        sa.Column("entity_id", sa.String(60)),
        sa.Column("child_id", sa.Integer, sa.ForeignKey("children.id")),
        sa.Column("details", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_audit_events_child_id", "audit_events", ["child_id"])


def downgrade() -> None:
    for table in ("audit_events", "login_failures", "break_glass_grants", "handovers",
                  "location_reviews", "status_changes", "visitation_plans", "placements",
                  "children", "users", "teams"):
        op.drop_table(table)
