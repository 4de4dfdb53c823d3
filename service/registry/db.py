"""Engine construction for the registry: SQLite (embedded default) or PostgreSQL (production).

Owns: turning a database URL into a configured SQLAlchemy `Engine` (SQLite gets foreign keys
on and a busy timeout; PostgreSQL URLs are normalised to the psycopg 3 driver). The default
URL (SQLite under `ATELIER_HOME`) is `service.config`'s. Must never create tables (that is the
migrations' job) nor hold any query logic.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 here; other URLs pass through."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record) -> None:
            # pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy emit BEGIN
            # (the recipe from SQLAlchemy's SQLite dialect docs).
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            # Readers never wait for a writer: replicas on one host share the file while an
            # operator revokes a twin. (A no-op for in-memory databases.)
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:
            # IMMEDIATE: take the write lock when the transaction starts. A deferred one that
            # reads and then writes fails at once with "database is locked" when another
            # process wrote in between (SQLite cannot wait there); IMMEDIATE waits its turn
            # (busy timeout). Readers are not blocked (WAL); writers queue, which the embedded
            # registry can afford. PostgreSQL is the multi-replica database.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)
