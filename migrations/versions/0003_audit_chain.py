"""The audit chain: a gapless seq and an HMAC on every audit event, and the one head row.

Events already in the log are chained in id order, under the running app's FIELDAPP_AUDIT_KEY (or
the variable itself when no app is running), so the chain covers the whole log. Without a key, a
log that already has events is left alone and the upgrade stops with a message.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""
import os

from alembic import op
import sqlalchemy as sa
from flask import has_app_context

from fieldapp.audit import GENESIS, audit_key, link_hash
from fieldapp.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

events = sa.table(
    "audit_events",
    sa.column("id", sa.Integer), sa.column("seq", sa.Integer), sa.column("at", UTCDateTime),
    sa.column("actor_id", sa.Integer), sa.column("action", sa.String),
    sa.column("entity", sa.String), sa.column("entity_id", sa.String),
    sa.column("child_id", sa.Integer), sa.column("details", sa.Text),
    sa.column("hash", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("seq", sa.Integer))
        batch.add_column(sa.Column("hash", sa.String(64)))
    last_seq, last_hash = _chain_existing_events(op.get_bind())
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("seq", existing_type=sa.Integer, nullable=False)
        batch.alter_column("hash", existing_type=sa.String(64), nullable=False)
    op.create_index("ux_audit_events_seq", "audit_events", ["seq"], unique=True)
    op.create_index("ix_audit_events_actor_id", "audit_events", ["actor_id"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_head_single_row"),
    )
    op.bulk_insert(head, [{"id": 1, "last_seq": last_seq, "last_hash": last_hash}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_index("ix_audit_events_actor_id", "audit_events")
    op.drop_index("ux_audit_events_seq", "audit_events")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("hash")
        batch.drop_column("seq")


def _chain_existing_events(conn) -> tuple[int, str]:
    rows = conn.execute(sa.select(events).order_by(events.c.id)).all()
    if not rows:
        return 0, GENESIS
    key = _audit_key()
    if key is None:
        raise RuntimeError(
            f"The audit log already holds {len(rows)} events, and chaining them needs the audit "
            "key. Set FIELDAPP_AUDIT_KEY (the same value the app will run with) and migrate again.")
    previous = GENESIS
    for seq, row in enumerate(rows, start=1):
        previous = link_hash(key, row, previous, seq=seq)
        conn.execute(events.update().where(events.c.id == row.id).values(seq=seq, hash=previous))
    return len(rows), previous


def _audit_key() -> bytes | None:
    if has_app_context():  # `fieldapp db upgrade` and `fieldapp init`: the app's own key
        return audit_key()
    key = os.environ.get("FIELDAPP_AUDIT_KEY")
    return key.encode() if key else None
