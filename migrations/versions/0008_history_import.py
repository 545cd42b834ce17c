"""History import: the import_keys table (kind, source id) -> the local row it became.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa

from fieldapp.db import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("source_id", sa.String(100), nullable=False),
        sa.Column("local_id", sa.Integer, nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("imported_at", UTCDateTime, nullable=False),
        sa.Column("imported_by_id", sa.Integer, sa.ForeignKey("users.id")),
    )
    op.create_index("ux_import_keys_source", "import_keys", ["kind", "source_id"], unique=True)
    op.create_index("ix_import_keys_local", "import_keys", ["kind", "local_id"])


def downgrade() -> None:
    op.drop_index("ix_import_keys_local", table_name="import_keys")
    op.drop_index("ux_import_keys_source", table_name="import_keys")
    op.drop_table("import_keys")
