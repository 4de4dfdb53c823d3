"""Alembic environment for the registry: online migrations against `config.attributes['db_url']`.

Owns: connecting and running the migration scripts in one transaction. Must never read an
ini file or environment variables: `service.registry.migrate` passes the URL in.
"""

from __future__ import annotations

from alembic import context

from service.registry.db import make_engine
from service.registry.models import Base

MIGRATION_LOCK_ID = 0x41544C52  # "ATLR": the advisory lock that serialises migrations
config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = make_engine(config.attributes["db_url"])
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            if connection.dialect.name == "postgresql":
                # Replicas starting together: one migrates, the others wait and find it done.
                # A transaction-level lock, released when the migration's transaction ends.
                with context.begin_transaction():
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
                    context.run_migrations()
                return
            with context.begin_transaction():  # SQLite: one host; several processes sharing it: run `atelier db upgrade` before starting them
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():  # pragma: no cover - offline SQL generation is not used
    raise RuntimeError("registry migrations run online only: use service.registry.migrate")
run_migrations_online()
