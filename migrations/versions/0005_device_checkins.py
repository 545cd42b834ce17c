"""Phones' check-ins: how many operations each phone still held at its last sync (DESIGN §8).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa

from fieldapp.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_checkins",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("held", sa.Integer, nullable=False),
        sa.Column("checked_in_at", UTCDateTime, nullable=False),
        sa.Column("device_time", UTCDateTime),
        sa.CheckConstraint("held >= 0", name="ck_device_checkins_held"),
    )
    op.create_index("ux_device_checkins_device", "device_checkins", ["user_id", "device_id"],
                    unique=True)


def downgrade() -> None:
    op.drop_index("ux_device_checkins_device", "device_checkins")
    op.drop_table("device_checkins")
