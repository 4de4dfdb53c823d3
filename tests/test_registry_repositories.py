"""The registry as small repositories over one `Database`: one injectable clock read by every
repository, one `Registry` handle that only names its repositories' operations, and no
database session opened (or reached for) outside `service/registry/`.

On SQLite, and on PostgreSQL when ATELIER_TEST_PG_URL is set (conftest's `db_url`).
"""

from __future__ import annotations

import ast
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import service
from service.registry import Database, Registry, request_hash, upgrade
from service.registry.likeness import store_fingerprint
from service.registry.models import TwinLikenessRow
from service.registry.sessions import SESSION_TTL, SessionStore

# Years from the real clock, so nothing below can pass by reading the system time.
T0 = datetime(2031, 5, 4, 9, 30, tzinfo=timezone.utc)
SHA = "cd" * 32


@pytest.fixture()
def clocked(db_url):
    """A registry whose database clock reads T0."""
    upgrade(db_url)
    db = Database(db_url, now=lambda: T0)
    yield Registry(db)
    db.engine.dispose()


def test_a_clock_set_once_on_the_database_is_read_by_every_repository(clocked):
    reg = clocked
    reg.create_tenant("acme", "Acme")
    assert reg.get_tenant("acme").created_at == T0
    key_id, token = reg.create_api_key("acme", ["generate"])
    assert reg.authenticate(token).key_id == key_id and reg.active_key(key_id) is not None
    [listing] = reg.list_keys("acme")
    assert (listing.created_at, listing.last_used_at) == (T0, T0)

    reg.put_twin("ava", display_name="Ava", adapter_key="ava.safetensors", adapter_sha256=SHA, rank=4)
    assert store_fingerprint(reg.twins, "ava", "test-scheme", b"\0" * 16)
    with reg.db.session() as s:
        assert s.get(TwinLikenessRow, "ava").created_at == T0

    record = reg.add_consent_version("ava", tenants=["acme"], uses=["ecommerce"], recorded_by="tests",
                                     valid_from=T0, valid_until=T0 + timedelta(hours=1))
    assert record.signed_at == T0
    assert reg.current_consent("ava").version == 1  # `at` defaults to the clock, not the system time
    assert reg.check_consent("ava", "acme", "ecommerce").ok

    stored = reg.idempotency_put("acme", "k1", request_hash({"a": 1}), {"n": 1}, 200)
    assert (stored.created_at, stored.expires_at) == (T0, T0 + timedelta(hours=24))
    assert reg.index_watermarks([("00112233aabbccdd", "gen-1", "acme", "ava", 0)]) == 1
    assert reg.find_watermark("00112233aabbccdd").created_at == T0
    _, session = SessionStore(reg.db).create(key_id)
    assert session.expires_at == T0 + SESSION_TTL

    assert reg.revoke_twin("ava").revoked_at == T0
    assert reg.check_consent("ava", "acme", "ecommerce").reason == "revoked"
    assert reg.revoke_key(key_id) is True
    assert reg.list_keys("acme")[0].revoked_at == T0
    assert reg.authenticate(token) is None and key_id not in reg.key_verifiers()


def test_the_registry_handle_names_its_repositories_operations_and_holds_none(clocked):
    reg = clocked
    assert {reg.tenants.db, reg.twins.db, reg.consent.db, reg.idempotency.db} == {reg.db}
    assert reg.engine is reg.db.engine
    assert reg.create_api_key == reg.tenants.create_api_key
    assert reg.put_twin == reg.twins.put_twin and reg.find_watermark == reg.twins.find_watermark
    assert reg.check_consent == reg.consent.check_consent
    assert reg.idempotency_get == reg.idempotency.get and reg.registry_version == reg.db.version
    with pytest.raises(AttributeError):
        reg.no_such_operation  # noqa: B018
    own = [name for name, value in vars(Registry).items() if callable(value) and not name.startswith("__")]
    assert own == []  # a composition, no logic: every operation is a repository's


def _service_modules():
    root = Path(service.__file__).parent
    for path in sorted(root.rglob("*.py")):
        yield path.relative_to(root.parent).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def test_only_the_registry_opens_sessions_and_its_modules_use_each_others_public_faces():
    offences = []
    for name, tree in _service_modules():
        inside = name.startswith("service/registry/")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                if not inside and node.module.split(".")[:2] == ["sqlalchemy", "orm"]:
                    offences.append(f"{name}: imports {node.module}")
                if node.module.startswith("service.registry") and any(a.name.startswith("_") for a in node.names):
                    offences.append(f"{name}: imports a private name of {node.module}")
            elif isinstance(node, ast.Import) and not inside:
                offences += [f"{name}: imports {a.name}" for a in node.names if a.name.startswith("sqlalchemy.orm")]
            elif isinstance(node, ast.Name) and node.id == "sessionmaker" and name != "service/registry/db.py":
                offences.append(f"{name}: makes sessions")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = node.func.value
                if node.func.attr == "session" and not inside:
                    offences.append(f"{name}: opens a database session ({ast.unparse(node.func)})")
                if node.func.attr.startswith("_") and not node.func.attr.startswith("__") and not (
                        isinstance(target, ast.Name) and target.id in {"self", "cls"}) and inside:
                    offences.append(f"{name}: calls another object's private {ast.unparse(node.func)}")
    assert offences == []
