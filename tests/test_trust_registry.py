"""The registry under attack: one likeness one twin (finding 5), one path for every consent
refusal (finding 6), the watermark index (finding 4/5), and the per-source guard (finding 1).
On SQLite, and on PostgreSQL when ATELIER_TEST_PG_URL is set (fixtures of test_registry)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, insert, text

from service.registry import Registry, make_engine, upgrade
from service.registry.db import utcnow
from service.registry.errors import AdapterInUse, TwinRevoked
from service.registry.migrate import current_revision, head_revision
from service.registry.models import TwinRow
from tests.test_registry import T0, registry  # noqa: F401  (fixture; db_url, SQLite and PostgreSQL when set, is conftest's)

SHA_A, SHA_B = "a1" * 32, "b2" * 32


def twin(reg: Registry, twin_id: str, sha: str, **kw) -> None:
    reg.put_twin(twin_id, display_name=twin_id, adapter_key=f"{twin_id}/{sha}.safetensors", adapter_sha256=sha, rank=4, **kw)


def legacy_copy(reg: Registry, twin_id: str, of: str) -> None:
    """A second twin on the same bytes, as releases before 0004 let an admin register it."""
    source = reg.get_twin(of, include_deleted=True)
    with reg.engine.begin() as conn:
        conn.execute(insert(TwinRow).values(id=twin_id, display_name=twin_id, adapter_key=source.adapter_key,
                                            adapter_sha256=source.adapter_sha256, rank=4, deleted=False, revision=1,
                                            created_at=utcnow(), updated_at=utcnow()))


def test_bytes_bound_to_another_twin_are_refused_live_or_revoked(registry):  # noqa: F811
    twin(registry, "cleo", SHA_A)
    twin(registry, "cleo", SHA_A)  # the same twin again: an update, allowed
    with pytest.raises(AdapterInUse) as caught:
        twin(registry, "cleo-copy", SHA_A)
    assert caught.value.status == 409 and caught.value.code == "adapter_in_use"
    registry.revoke_twin("cleo")
    with pytest.raises(AdapterInUse, match="revoked twin"):
        twin(registry, "cleo-again", SHA_A)
    with pytest.raises(TwinRevoked):
        twin(registry, "cleo", SHA_B)  # a revoked twin takes no new adapter either
    assert registry.get_twin("cleo-copy") is None and registry.get_twin("cleo-again") is None


def test_a_revocation_reaches_every_twin_of_the_same_bytes(registry):  # noqa: F811
    twin(registry, "cleo", SHA_A)
    twin(registry, "ava", SHA_B)
    legacy_copy(registry, "cleo-copy", of="cleo")
    version = registry.registry_version()
    revoked = registry.revoke_likeness("cleo", delete=True)
    assert [t.id for t in revoked] == ["cleo", "cleo-copy"] and all(t.revoked_at and t.deleted for t in revoked)
    assert {t.id for t in registry.revoked_twins()} == {"cleo", "cleo-copy"}  # every replica evicts both
    assert registry.registry_version() == version + 1 and registry.get_twin("ava").revoked_at is None
    assert registry.revoke_likeness("cleo", delete=True)[1].revision == revoked[1].revision  # idempotent
    assert registry.registry_version() == version + 1


def test_migration_0004_revokes_live_copies_of_revoked_likenesses(db_url):  # noqa: F811
    upgrade(db_url, "0003_item_leases")
    engine = make_engine(db_url)
    try:
        reg = Registry(engine)
        with engine.begin() as conn:
            for twin_id, sha, revoked in [("cleo", SHA_A, True), ("cleo-copy", SHA_A, False), ("ava", SHA_B, False)]:
                conn.execute(text("INSERT INTO twins (id, display_name, adapter_key, adapter_sha256, rank, deleted, "
                                  "revision, revoked_at, created_at, updated_at) VALUES (:id, :id, :id, :sha, 4, :f, 1, "
                                  ":revoked, :now, :now)"),
                             {"id": twin_id, "sha": sha, "f": False, "revoked": T0 if revoked else None, "now": T0})
        version = reg.registry_version()
        upgrade(db_url)
        assert current_revision(db_url) == head_revision()
        assert reg.get_twin("cleo-copy").revoked_at is not None and reg.get_twin("cleo-copy").revision == 2
        assert reg.get_twin("ava").revoked_at is None
        assert reg.registry_version() == version + 1
    finally:
        engine.dispose()


def test_the_consent_decision_runs_the_same_statements_whatever_the_answer(registry):  # noqa: F811
    registry.create_tenant("acme", "Acme")
    registry.create_tenant("globex", "Globex")
    for twin_id, sha, tenant in [("ours", SHA_A, "acme"), ("theirs", SHA_B, "globex"), ("gone", "c3" * 32, "acme"),
                                 ("gone-theirs", "d4" * 32, "globex")]:
        twin(registry, twin_id, sha)
        registry.add_consent_version(twin_id, tenants=[tenant], uses=["ecommerce"], recorded_by="t",
                                     valid_from=T0, signed_at=T0)
    registry.revoke_twin("gone")
    registry.revoke_twin("gone-theirs")
    later = utcnow() + timedelta(seconds=1)
    counts, repeats, reasons = {}, {}, {}
    for twin_id in ("ours", "theirs", "gone", "gone-theirs", "nobody"):
        for seen in (counts, repeats):  # the first check reads the facts, a repeat reuses them
            statements: list[str] = []
            listener = lambda *args, **kw: statements.append(args[2])  # noqa: E731
            event.listen(registry.engine, "before_cursor_execute", listener)
            try:
                decision = registry.check_consent(twin_id, "acme", "ecommerce", later)
            finally:
                event.remove(registry.engine, "before_cursor_execute", listener)
            selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
            seen[twin_id], reasons[twin_id] = len(selects), (decision.reason, decision.tenant_named)
    assert set(counts.values()) == {6}, counts  # the registry version, then the five facts (licences: 0011)
    assert set(repeats.values()) == {1}, repeats  # the registry version alone
    assert reasons == {"ours": (None, True), "theirs": ("consent_missing", False), "gone": ("revoked", True),
                       "gone-theirs": ("revoked", False), "nobody": ("consent_missing", False)}


def test_the_watermark_index_resolves_one_image_by_primary_key(registry):  # noqa: F811
    registry.index_watermarks([("00ff00ff00ff00ff", "a" * 32, "acme", "ava", 0), ("1111222233334444", "a" * 32, "acme", "ava", 1)])
    mark = registry.find_watermark("1111222233334444")
    assert (mark.generation_id, mark.tenant_id, mark.twin_id, mark.image_index) == ("a" * 32, "acme", "ava", 1)
    assert mark.created_at.tzinfo is not None
    assert registry.find_watermark("0000000000000000") is None and registry.find_watermark("../x") is None
    with pytest.raises(Exception):  # an id is indexed once
        registry.index_watermarks([("00ff00ff00ff00ff", "b" * 32, "globex", None, 0)])
    assert registry.find_watermark("00ff00ff00ff00ff").tenant_id == "acme"


def test_the_source_guard_counts_failures_before_any_key_and_forgets_each_minute():
    from service.tenancy.preauth import SourceGuard, SourceLimited

    now = [120.0]
    guard = SourceGuard(requests_per_minute=100, failures_per_minute=3, clock=lambda: now[0])
    for _ in range(3):
        guard.admit("198.51.100.1")
        guard.failed("198.51.100.1")
    with pytest.raises(SourceLimited) as caught:
        guard.admit("198.51.100.1")
    assert caught.value.code == "too_many_auth_failures" and 1 <= int(caught.value.response_headers()["Retry-After"]) <= 61
    guard.admit("198.51.100.2")  # another source is not held back
    guard.failed("2001:db8::1")
    guard.failed("2001:db8::2")
    guard.failed("2001:db8::3")  # one /64: one source
    with pytest.raises(SourceLimited):
        guard.admit("2001:db8::4")
    for _ in range(100):
        guard.admit("198.51.100.3")
    with pytest.raises(SourceLimited) as caught:
        guard.admit("198.51.100.3")
    assert caught.value.code == "source_rate_limited"
    now[0] += 60
    guard.admit("198.51.100.1")  # a new minute
    guard.admit("198.51.100.3")
