"""Apply or roll back the registry's schema with Alembic, configured in code.

Owns: building an Alembic `Config` that points at `service/registry/migrations/` (no
alembic.ini at run time) and the `upgrade(db_url)`, `downgrade(db_url, target)` and
`current_revision(db_url)` entry points. Must never define schema itself (that lives in
`migrations/versions/`) nor touch rows outside the seed data a migration inserts.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from service.registry.db import make_engine, normalise_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(db_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # The URL travels as an attribute, not an ini option: no configparser '%' interpolation.
    cfg.attributes["db_url"] = normalise_url(db_url)
    return cfg


def upgrade(db_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(db_url), revision)


def downgrade(db_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(db_url), revision)


def current_revision(db_url: str) -> str | None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def ensure_schema(db_url: str) -> bool:
    """Bring the schema to head if it is behind; True when a migration ran. Cheap when it is
    current, so every replica may call it at start-up."""
    if current_revision(db_url) == head_revision():
        return False
    upgrade(db_url)
    return True
