"""Database triggers that refuse UPDATE and DELETE of entries in an approved review stage.

The app refuses such changes too; the triggers make the rule hold for anyone with a database
connection. SQLite's batch migrations recreate a table and drop its triggers, so every migration
that touches ``step_entries`` or ``review_stages`` calls ``create_triggers`` again.
"""
from __future__ import annotations

SQLITE = (
    """CREATE TRIGGER IF NOT EXISTS step_entries_frozen_update BEFORE UPDATE ON step_entries
       WHEN EXISTS (SELECT 1 FROM review_stages r WHERE r.id = OLD.review_stage_id
                    AND r.state = 'approved')
       BEGIN SELECT RAISE(ABORT, 'step entry belongs to an approved review stage'); END""",
    """CREATE TRIGGER IF NOT EXISTS step_entries_frozen_delete BEFORE DELETE ON step_entries
       WHEN EXISTS (SELECT 1 FROM review_stages r WHERE r.id = OLD.review_stage_id
                    AND r.state = 'approved')
       BEGIN SELECT RAISE(ABORT, 'step entry belongs to an approved review stage'); END""",
)
SQLITE_DROP = ("DROP TRIGGER IF EXISTS step_entries_frozen_update",
               "DROP TRIGGER IF EXISTS step_entries_frozen_delete")

POSTGRESQL = (
    """CREATE OR REPLACE FUNCTION fieldapp_refuse_frozen_entry() RETURNS trigger AS $$
       BEGIN
         IF EXISTS (SELECT 1 FROM review_stages r WHERE r.id = OLD.review_stage_id
                    AND r.state = 'approved') THEN
           RAISE EXCEPTION 'step entry % belongs to an approved review stage', OLD.id;
         END IF;
         IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
         RETURN NEW;
       END $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS step_entries_frozen ON step_entries",
    """CREATE TRIGGER step_entries_frozen BEFORE UPDATE OR DELETE ON step_entries
       FOR EACH ROW EXECUTE FUNCTION fieldapp_refuse_frozen_entry()""",
)
POSTGRESQL_DROP = ("DROP TRIGGER IF EXISTS step_entries_frozen ON step_entries",
                   "DROP FUNCTION IF EXISTS fieldapp_refuse_frozen_entry()")


def create_triggers(op) -> None:
    """Create (or re-create) the triggers. ``op`` is Alembic's op, inside a migration."""
    dialect = op.get_bind().dialect.name
    for statement in POSTGRESQL if dialect == "postgresql" else SQLITE:
        op.execute(statement)


def drop_triggers(op) -> None:
    dialect = op.get_bind().dialect.name
    for statement in POSTGRESQL_DROP if dialect == "postgresql" else SQLITE_DROP:
        op.execute(statement)
