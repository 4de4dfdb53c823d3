"""The registry database: the engine, its sessions, the one clock and the version.

Owns: turning a database URL into a configured SQLAlchemy `Engine` (SQLite gets foreign keys
on and a busy timeout; PostgreSQL URLs are normalised to the psycopg 3 driver), and the
`Database` every repository of `service.registry` shares: the engine, `session()` (the one
way to open a SQLAlchemy session; `reading()`, one that only reads and so never waits for,
nor holds, SQLite's write lock; `ephemeral()`, a transaction for state that need not
survive a power loss), one injectable clock (`now()`: tests pass their own;
`at(moment)` is a caller's timestamp or that clock's now, so every repository defaults to the
one clock), and the registry version that replicas compare to know their caches are stale
(`version()`, `bump_version()`); and `strings()`, how a repository normalises a list of
names before storing it. The default URL (SQLite under `ATELIER_HOME`) is `service.config`'s.
Must never create tables (that is the migrations' job) nor hold any query logic beyond the
version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, create_engine, event, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.errors import InvalidRequest
from service.registry.models import RegistryStateRow


def utcnow() -> datetime:
    """The system clock, in UTC: the default `Database.now`."""
    return datetime.now(timezone.utc)

def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 here; other URLs pass through."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


VERSION = select(RegistryStateRow.version).where(RegistryStateRow.id == 1)
READ_ONLY = "atelier_read_only"  # the execution option of `Database.reading()`'s connections
READS = ("SELECT", "WITH", "BEGIN", "PRAGMA")  # what a reading() transaction may send


class ReadOnlyViolation(RuntimeError):
    """A write attempted in a `Database.reading()` transaction: a bug in the caller."""


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
            # registry can afford. PostgreSQL is the multi-replica database. A transaction of
            # `Database.reading()` only reads: a plain (deferred) BEGIN, which under WAL never
            # waits for a writer's commit nor makes one wait (a request's key and version
            # lookups used to queue behind every audit record's fsync).
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

    else:
        engine = create_engine(url, pool_pre_ping=True)

    @event.listens_for(engine, "before_cursor_execute")
    def _reads_only(conn, cursor, statement, parameters, context, executemany) -> None:
        if conn.get_execution_options().get(READ_ONLY) and not statement.lstrip().upper().startswith(READS):
            raise ReadOnlyViolation(f"a reading() transaction may only read: {statement.split(None, 1)[0]}")

    return engine


class Database:
    """One registry database: what every repository is built on.

    `Database(engine_or_url, now=clock)`; `Database.of(x)` accepts a `Database` (returned as
    is) or an `Engine`, so code that still passes an engine keeps working."""

    def __init__(self, engine: Engine | str, *, now: Callable[[], datetime] = utcnow):
        self.engine = make_engine(engine) if isinstance(engine, str) else engine
        self.postgres = self.engine.dialect.name == "postgresql"
        self._clock = now
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = self.engine.execution_options(**{READ_ONLY: True})
        self._flush_guards: set = set()

    @classmethod
    def of(cls, db: "Database | Engine | str") -> "Database":
        return db if isinstance(db, Database) else cls(db)

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC), from the injected clock."""
        return self._clock()

    def at(self, moment: datetime | None) -> datetime:
        """`moment` in UTC, or the clock's now when None; a naive timestamp is refused (422)."""
        if moment is None:
            return self.now()
        if moment.tzinfo is None:
            raise InvalidRequest("timestamps must be timezone-aware", field="at")
        return moment.astimezone(timezone.utc)

    def session(self) -> Session:
        """A new session (a context manager): `with db.session() as s, s.begin(): ...`."""
        return self._sessions()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A Core connection in one transaction that only reads (`with db.reading() as c:`),
        for the lookups every request makes (no ORM session to build: about a quarter of the
        time). On SQLite it begins deferred: it neither waits for a writer's commit nor delays
        one. A write in it raises `ReadOnlyViolation`; a read-then-write belongs in `session()`."""
        with self._reader.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def ephemeral(self) -> Iterator[Connection]:
        """A transaction whose commit need not outlive an operating-system crash or power
        loss, only a process crash: rate-limit state, which a lost update only lets a key
        burst once more. SQLite commits it without waiting for fsync (`synchronous=NORMAL`
        in WAL mode: still atomic, and durable the moment any later commit syncs the log);
        PostgreSQL with `synchronous_commit` off (atomic; the last moments may be lost if
        the server itself crashes). Never for a record anyone relies on: audit, jobs, consent
        and licences commit with `session()`."""
        with self.engine.connect() as conn:
            if self.postgres:
                with conn.begin():
                    conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                    yield conn
                return
            raw = conn.connection.dbapi_connection  # autocommit (isolation_level None): a PRAGMA runs at once
            was = raw.execute("PRAGMA synchronous").fetchone()[0]
            raw.execute("PRAGMA synchronous=NORMAL")
            try:
                with conn.begin():
                    yield conn
            finally:
                try:
                    raw.execute(f"PRAGMA synchronous={int(was)}")  # the pool's connection as it was
                except Exception:  # noqa: BLE001 - a broken connection never goes back to the pool
                    conn.invalidate()

    def guard_flush(self, check: Callable) -> None:
        """Run `check(session, flush_context, instances)` before every flush of every session
        of this database (a repository's invariant that no path may break); once per check."""
        if check not in self._flush_guards:
            self._flush_guards.add(check)
            event.listen(self._sessions, "before_flush", check)

    def version(self) -> int:
        """The registry version: every change to a tenant, key, twin or consent raises it."""
        with self.reading() as conn:
            return int(conn.scalar(VERSION))

    @staticmethod
    def bump_version(session: Session) -> None:
        """Bump the registry version in `session`'s transaction (atomic on SQLite and PostgreSQL)."""
        session.execute(update(RegistryStateRow).where(RegistryStateRow.id == 1)
                        .values(version=RegistryStateRow.version + 1))


def strings(values: Iterable[str], field: str) -> list[str]:
    """A list of names as a repository stores it: stripped, deduplicated, sorted; one string
    (not a list) or an empty name is refused (422 naming `field`)."""
    if isinstance(values, str):
        raise InvalidRequest(f"{field} must be a list of strings, not one string", field=field)
    out = [str(v).strip() for v in values]
    if any(not v for v in out):
        raise InvalidRequest(f"{field} holds an empty value", field=field)
    return sorted(set(out))


class Handle:
    """One object over several repositories that share a `Database`: `routes` names each
    forwarded operation as (repository attribute, its method). Subclasses compose the
    repositories in `__init__` and hold no logic of their own."""

    routes: dict[str, tuple[str, str]] = {}

    def __getattr__(self, name: str):
        try:
            repository, operation = type(self).routes[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}") from None
        return getattr(self.__dict__[repository], operation)
