"""Alembic environment. The URL comes from ``fieldapp.migrate`` (config attribute ``url``)."""
from alembic import context

from fieldapp.db import make_engine
from fieldapp import models  # noqa: F401  (registers the mappings for autogenerate comparisons)
from fieldapp.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.attributes["url"], target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # The app's own engine, so that SQLite gets WAL, foreign keys and the busy timeout here too.
    engine = make_engine(config.attributes["url"])
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:
    # render_as_batch: SQLite alters tables by copying them, which Alembic's batch mode does.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
