"""Alembic environment for the projection database.

The database URL comes from, in order: an explicit connection handed over by
projectord (``config.attributes["connection"]``), ``-x db=sqlite:///PATH``, or
projectord's own configuration (``$KANADE_CONFIG`` / ``$KANADE_DB`` / default).
"""

from alembic import context
from projectord.config import load_settings
from projectord.database import create_writer_engine, sqlite_url
from projectord.schema import metadata

config = context.config
target_metadata = metadata


def _db_path() -> str:
    given = context.get_x_argument(as_dictionary=True).get("db")
    if given:
        return given.removeprefix("sqlite:///") if given.startswith("sqlite:///") else given
    return str(load_settings().db_path)


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things in place
        compare_type=True,
    )


def run_migrations_offline() -> None:
    context.configure(
        url=sqlite_url(_db_path()), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    # The same engine projectord writes with: WAL, busy timeout, and explicit
    # BEGIN so that DDL and the version row commit together.
    engine = create_writer_engine(_db_path())
    with engine.begin() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
