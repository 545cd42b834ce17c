"""FACES reconciliation: the living arrangement the state system last reported for each child.

One row per child, written by the roster import when its file carries the optional
`living_arrangement` column; the reconciliation report compares it with the child's status.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa

from fieldapp.db import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "faces_arrangements",
        sa.Column("child_id", sa.Integer, sa.ForeignKey("children.id"), primary_key=True),
        sa.Column("arrangement", sa.String(40), nullable=False),
        sa.Column("imported_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("faces_arrangements")
