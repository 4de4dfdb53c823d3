"""Reading the fleet's audit record from the registry database, as another process would.

Tests name where a served instance keeps its registry: its `ATELIER_HOME` (the default SQLite
file there) or a database URL (`ATELIER_DB_URL`, e.g. the PostgreSQL of a fleet test).
"""

from __future__ import annotations

from pathlib import Path


def audit_store(where: Path | str):
    """The `AuditRecords` of the registry at `where` (a home directory or a database URL)."""
    from service.registry import Database
    from service.registry.audit import AuditRecords

    url = where if isinstance(where, str) and "://" in where else f"sqlite:///{Path(where) / 'registry.db'}"
    return AuditRecords(Database(url))


def find(where: Path | str, field: str, value) -> list[dict]:
    """Records whose `field` equals `value`, oldest first."""
    return audit_store(where).find(field, value)


def every_record(where: Path | str) -> list[dict]:
    return list(audit_store(where).iter_records())


def chain_ids(where: Path | str) -> set[str]:
    """The chains (one per gateway process that has started) the registry holds now."""
    return {chain.log_id for chain in audit_store(where).chains()}


def records_of_chains_since(where: Path | str, known: set[str]) -> list[dict]:
    """Every record of the chains opened after `known` was taken (the processes started since)."""
    import json

    store = audit_store(where)
    return [json.loads(line) for chain in store.chains() if chain.log_id not in known
            for line in store.lines(chain.log_id)]
