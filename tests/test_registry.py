"""The registry database layer: migrations, API keys, twins, consent, idempotency, version.

Every test runs against SQLite, and again against PostgreSQL when ATELIER_TEST_PG_URL is set
(e.g. postgresql+psycopg://atelier:atelier@127.0.0.1:55432/atelier_test); each PostgreSQL
test starts from an empty schema: every registry table in that database is dropped, so point
it at a throwaway database only.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect

from service.errors import InvalidRequest, TwinNotFound
from service.registry import Registry, downgrade, make_engine, request_hash, upgrade
from service.registry.errors import (
    ConsentImmutable,
    IdempotencyConflict,
    TenantNotFound,
    TwinRevoked,
)
from service.registry.migrate import current_revision, head_revision
from service.registry.models import ApiKeyRow, Base, ConsentRow

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
SHA = "ab" * 32
TABLES = {"tenants", "api_keys", "twins", "consent_records", "consent_tenants", "idempotency_keys", "registry_state",
          "tenant_settings", "scene_presets", "jobs", "job_items", "webhook_deliveries"}


@pytest.fixture()
def registry(db_url):
    upgrade(db_url)
    engine = make_engine(db_url)
    yield Registry(engine)
    engine.dispose()


@pytest.fixture()
def world(registry):
    """Two tenants and one twin with no consent yet."""
    registry.create_tenant("acme", "Acme")
    registry.create_tenant("globex", "Globex")
    registry.put_twin("ava", display_name="Ava", adapter_key="twins/ava.safetensors", adapter_sha256=SHA, rank=8)
    return registry


def _consent(reg: Registry, **overrides):
    args = dict(tenants=["acme"], uses=["ecommerce"], recorded_by="agent@atelier", valid_from=T0, signed_at=T0)
    args.update(overrides)
    return reg.add_consent_version("ava", **args)


# -- migrations ---------------------------------------------------------------------------


def test_migrations_apply_from_empty_downgrade_and_reapply(db_url):
    engine = make_engine(db_url)
    try:
        assert current_revision(db_url) is None
        assert not TABLES & set(inspect(engine).get_table_names())
        upgrade(db_url)
        assert current_revision(db_url) == head_revision()
        assert TABLES <= set(inspect(engine).get_table_names())
        assert Registry(engine).registry_version() == 0
        downgrade(db_url, "0001_initial")  # one step back: the jobs tables go, the rest stays
        assert current_revision(db_url) == "0001_initial"
        assert "jobs" not in set(inspect(engine).get_table_names()) and "tenants" in set(inspect(engine).get_table_names())
        downgrade(db_url, "base")
        assert current_revision(db_url) is None
        assert not TABLES & set(inspect(engine).get_table_names())
        upgrade(db_url)
        assert current_revision(db_url) == head_revision()
        assert Registry(engine).registry_version() == 0
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_models(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


# -- API keys -----------------------------------------------------------------------------


def test_plaintext_token_never_reaches_the_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    upgrade(url)
    engine = make_engine(url)
    reg = Registry(engine)
    reg.create_tenant("acme", "Acme")
    key_id, token = reg.create_api_key("acme", ["generate"])
    assert reg.authenticate(token) is not None  # also writes last_used_at
    engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("registry.db"))
    secret = token.split("_", 2)[2]
    assert key_id.encode() in raw  # the search itself works: the public id is there
    assert token.encode() not in raw
    assert secret.encode() not in raw


def test_authenticate_accepts_the_token_and_rejects_wrong_or_revoked(world):
    key_id, token = world.create_api_key("acme", ["generate", "verify"], requests_per_minute=30, max_concurrent_jobs=2)
    assert token.startswith(f"atl_{key_id}_")
    info = world.authenticate(token)
    assert info is not None
    assert (info.key_id, info.tenant_id, info.scopes) == (key_id, "acme", frozenset({"generate", "verify"}))
    assert (info.requests_per_minute, info.max_concurrent_jobs) == (30, 2)

    secret = token.split("_", 2)[2]
    wrong = token[:-1] + ("A" if secret[-1] != "A" else "B")
    assert world.authenticate(wrong) is None
    assert world.authenticate(f"atl_{'0' * 12}_{secret}") is None  # unknown key id
    assert world.authenticate("not-a-token") is None
    assert world.authenticate("") is None

    other_id, other = world.create_api_key("acme", ["admin"])
    assert world.revoke_key(key_id) is True
    assert world.revoke_key(key_id) is False
    assert world.authenticate(token) is None
    assert world.authenticate(other) is not None  # revoking one key leaves the others


def test_keys_of_a_disabled_tenant_fail_and_last_used_is_recorded(world):
    key_id, token = world.create_api_key("acme", ["generate"])
    world.authenticate(token, now=T0)
    with world.db.session() as s:
        assert s.get(ApiKeyRow, key_id).last_used_at == T0
    world.set_tenant_disabled("acme", True)
    assert world.authenticate(token) is None
    world.set_tenant_disabled("acme", False)
    assert world.authenticate(token) is not None


def test_create_api_key_validates_scopes_and_tenant(world):
    with pytest.raises(InvalidRequest):
        world.create_api_key("acme", ["generate", "root"])
    with pytest.raises(InvalidRequest):
        world.create_api_key("acme", [])
    with pytest.raises(TenantNotFound):
        world.create_api_key("nobody", ["generate"])


# -- twins and consent --------------------------------------------------------------------


def test_consent_versions_append_and_the_newest_signed_governs(world):
    v1 = _consent(world, signed_at=T0)
    v2 = _consent(world, uses=["ecommerce", "editorial"], tenants=["acme", "globex"], signed_at=T0 + timedelta(days=10))
    assert (v1.version, v2.version) == (1, 2)
    assert [r.version for r in world.consent_history("ava")] == [1, 2]
    assert world.current_consent("ava", T0 - timedelta(seconds=1)) is None
    assert world.current_consent("ava", T0 + timedelta(days=1)).version == 1
    current = world.current_consent("ava", T0 + timedelta(days=11))
    assert current.version == 2 and current.tenants == frozenset({"acme", "globex"})
    assert current.uses == ("ecommerce", "editorial")


def test_a_signed_renewal_governs_from_its_start_not_its_signature(world):
    _consent(world, valid_until=T0 + timedelta(days=30))
    renewal = _consent(world, uses=["lookbook"], valid_from=T0 + timedelta(days=30), signed_at=T0 + timedelta(days=20))
    day_25, day_31 = T0 + timedelta(days=25), T0 + timedelta(days=31)
    assert world.current_consent("ava", day_25).version == 1  # signed, not yet started
    assert world.check_consent("ava", "acme", "ecommerce", day_25).ok
    assert world.current_consent("ava", day_31).version == renewal.version
    assert world.check_consent("ava", "acme", "ecommerce", day_31).reason == "use_not_allowed"


def test_signed_consent_is_immutable(world):
    signed = _consent(world)
    with pytest.raises(ConsentImmutable):
        world.amend_consent(signed.id, uses=["editorial"])
    with pytest.raises(ConsentImmutable):
        world.sign_consent(signed.id)
    # Even a direct ORM change through the registry's sessions is refused before any UPDATE.
    with world.db.session() as s:
        row = s.get(ConsentRow, signed.id)
        row.uses = ["everything"]
        with pytest.raises(ConsentImmutable):
            s.commit()
    assert world.consent_history("ava")[0].uses == ("ecommerce",)


def test_a_draft_can_be_amended_until_signed_and_does_not_govern(world):
    draft = _consent(world, signed=False)
    assert draft.signed_at is None
    assert world.current_consent("ava", T0 + timedelta(days=1)) is None
    assert world.check_consent("ava", "acme", "ecommerce", T0 + timedelta(days=1)).reason == "consent_missing"
    amended = world.amend_consent(draft.id, uses=["editorial"])
    assert amended.uses == ("editorial",)
    world.sign_consent(draft.id, at=T0)
    assert world.check_consent("ava", "acme", "editorial", T0 + timedelta(days=1)).ok
    with pytest.raises(ConsentImmutable):
        world.amend_consent(draft.id, uses=["ecommerce"])


def test_check_consent_allows_and_names_each_refusal(world):
    later = T0 + timedelta(days=1)
    assert world.check_consent("ava", "acme", "ecommerce", later).reason == "consent_missing"
    record = _consent(world, valid_until=T0 + timedelta(days=30), deny_terms=["leather"], excluded_categories=["swimwear"])

    ok = world.check_consent("ava", "acme", "ecommerce", later)
    assert ok.ok and ok.reason is None and (ok.consent_id, ok.version) == (record.id, 1)
    assert ok.deny_terms == ("leather",) and ok.excluded_categories == ("swimwear",)

    assert world.check_consent("ava", "acme", "billboard", later).reason == "use_not_allowed"
    assert world.check_consent("ava", "globex", "ecommerce", later).reason == "consent_missing"  # other tenant's twin
    assert world.check_consent("nobody", "acme", "ecommerce", later).reason == "consent_missing"
    assert world.check_consent("ava", "acme", "ecommerce", T0 + timedelta(days=30)).reason == "consent_expired"
    _consent(world, valid_from=T0 + timedelta(days=60), signed_at=T0 + timedelta(days=40))
    not_yet = world.check_consent("ava", "acme", "ecommerce", T0 + timedelta(days=50))
    assert not_yet.reason == "consent_expired" and not_yet.version == 1  # v1 ended, v2 not started
    assert world.check_consent("ava", "acme", "ecommerce", T0 + timedelta(days=60)).ok

    world.revoke_twin("ava", now=T0 + timedelta(days=70))
    assert world.check_consent("ava", "acme", "ecommerce", T0 + timedelta(days=71)).reason == "revoked"
    assert not world.check_consent("ava", "acme", "ecommerce", T0 + timedelta(days=71)).ok


def test_a_cached_consent_decision_sees_a_change_made_through_another_replica(world, db_url):
    """Two gateways, one database: a revocation through one is seen by the other's next check,
    and time moving past valid_until expires a cached decision with no change at all."""
    _consent(world, valid_until=T0 + timedelta(days=30))
    other_engine = make_engine(db_url)
    other = Registry(other_engine)
    try:
        assert world.check_consent("ava", "acme", "ecommerce", T0 + timedelta(days=1)).ok
        assert world.check_consent("ava", "acme", "ecommerce", T0 + timedelta(days=30)).reason == "consent_expired"
        other.revoke_twin("ava", now=T0 + timedelta(days=2))
        assert world.check_consent("ava", "acme", "ecommerce", T0 + timedelta(days=3)).reason == "revoked"
    finally:
        other_engine.dispose()


def test_revocation_is_final_and_delete_hides_the_twin(world):
    _consent(world)
    before = world.get_twin("ava").revision
    revoked = world.revoke_twin("ava")
    assert revoked.revoked_at is not None and revoked.revision == before + 1
    with pytest.raises(TwinRevoked):
        _consent(world)
    with pytest.raises(TwinRevoked):
        world.put_twin("ava", display_name="Ava", adapter_key="k", adapter_sha256=SHA, rank=8)
    assert world.get_twin("ava") is not None
    version = world.registry_version()
    assert world.revoke_twin("ava") == revoked and world.registry_version() == version  # a repeat changes nothing
    world.revoke_twin("ava", delete=True)
    assert world.registry_version() == version + 1
    assert world.get_twin("ava") is None
    assert world.get_twin("ava", include_deleted=True).deleted
    with pytest.raises(TwinNotFound):
        world.revoke_twin("nobody")


def test_put_twin_bumps_its_revision_and_validates(world):
    twin = world.put_twin("ava", display_name="Ava 2", adapter_key="twins/ava-v2.safetensors", adapter_sha256="cd" * 32, rank=16)
    assert (twin.revision, twin.display_name, twin.rank) == (2, "Ava 2", 16)
    assert world.get_twin("ava").adapter_sha256 == "cd" * 32
    with pytest.raises(InvalidRequest):
        world.put_twin("bo", display_name="Bo", adapter_key="k", adapter_sha256="nothex", rank=8)


def test_registry_version_bumps_on_every_change_and_not_on_reads(registry):
    seen = [registry.registry_version()]

    def changed():
        seen.append(registry.registry_version())
        assert seen[-1] > seen[-2]

    registry.create_tenant("acme", "Acme"); changed()  # noqa: E702
    key_id, token = registry.create_api_key("acme", ["generate"]); changed()  # noqa: E702
    registry.put_twin("ava", display_name="Ava", adapter_key="k", adapter_sha256=SHA, rank=8); changed()  # noqa: E702
    _consent(registry); changed()  # noqa: E702
    registry.authenticate(token)
    registry.check_consent("ava", "acme", "ecommerce", T0 + timedelta(days=1))
    registry.get_twin("ava")
    assert registry.registry_version() == seen[-1]  # reads and authentication do not bump
    registry.revoke_key(key_id); changed()  # noqa: E702
    registry.revoke_twin("ava"); changed()  # noqa: E702


# -- idempotency --------------------------------------------------------------------------


def test_idempotency_replays_the_same_request_and_refuses_a_different_one(world):
    body = {"twin_id": "ava", "prompt": "linen blazer", "steps": 2}
    h = request_hash(body)
    assert h == request_hash(dict(reversed(list(body.items()))))  # key order does not matter
    assert world.idempotency_get("acme", "k1", h, now=T0) is None
    stored = world.idempotency_put("acme", "k1", h, {"generation_id": "g1"}, 200, now=T0)
    assert stored.expires_at == T0 + timedelta(hours=24)
    replay = world.idempotency_get("acme", "k1", h, now=T0 + timedelta(hours=1))
    assert (replay.status_code, replay.response) == (200, {"generation_id": "g1"})

    other = request_hash({**body, "prompt": "wool coat"})
    with pytest.raises(IdempotencyConflict):
        world.idempotency_get("acme", "k1", other, now=T0 + timedelta(hours=1))
    with pytest.raises(IdempotencyConflict):
        world.idempotency_put("acme", "k1", other, {"generation_id": "g2"}, 200, now=T0 + timedelta(hours=1))
    # A second put of the same request keeps the first response (first writer wins).
    again = world.idempotency_put("acme", "k1", h, {"generation_id": "g9"}, 200, now=T0 + timedelta(hours=2))
    assert again.response == {"generation_id": "g1"}
    # Keys are per tenant.
    assert world.idempotency_get("globex", "k1", other, now=T0) is None


def test_idempotency_entries_expire_after_24_hours(world):
    h = request_hash({"a": 1})
    world.idempotency_put("acme", "k1", h, {"n": 1}, 201, now=T0)
    assert world.idempotency_get("acme", "k1", h, now=T0 + timedelta(hours=23, minutes=59)) is not None
    assert world.idempotency_get("acme", "k1", h, now=T0 + timedelta(hours=24)) is None
    fresh = world.idempotency_put("acme", "k1", request_hash({"a": 2}), {"n": 2}, 200, now=T0 + timedelta(hours=25))
    assert fresh.response == {"n": 2}
    world.idempotency_put("acme", "k2", h, None, 202, now=T0)
    assert world.purge_expired_idempotency(now=T0 + timedelta(days=3)) == 2


def test_idempotency_key_length_is_bounded(world):
    h = request_hash({})
    world.idempotency_put("acme", "x" * 255, h, {}, 200, now=T0)
    assert world.idempotency_get("acme", "x" * 255, h, now=T0) is not None
    with pytest.raises(InvalidRequest):
        world.idempotency_put("acme", "x" * 256, h, {}, 200, now=T0)
    with pytest.raises(InvalidRequest):
        world.idempotency_get("acme", "", h, now=T0)


def test_naive_timestamps_are_refused(world):
    with pytest.raises(InvalidRequest):
        world.check_consent("ava", "acme", "ecommerce", datetime(2026, 1, 1))


def test_postgres_urls_use_the_psycopg3_driver():
    from service.config import Settings
    from service.registry.db import normalise_url

    assert normalise_url("postgresql://u:p%40ss@db:5432/reg") == "postgresql+psycopg://u:p%40ss@db:5432/reg"
    assert normalise_url("postgres://u@db/reg") == "postgresql+psycopg://u@db/reg"
    assert normalise_url("sqlite:////x/registry.db") == "sqlite:////x/registry.db"
    assert Settings.from_env({"ATELIER_HOME": "/x"}).db_url == "sqlite:////x/registry.db"


def test_with_migrations_off_a_schema_behind_head_refuses_to_open(tmp_path):
    from service.registry import SchemaBehind, open_registry

    url = f"sqlite:///{tmp_path / 'behind.db'}"
    upgrade(url, "0001_initial")
    with pytest.raises(SchemaBehind, match="atelier db upgrade"):
        open_registry(url, migrate=False)
    upgrade(url)
    assert open_registry(url, migrate=False).registry_version() == 0


def test_reading_transactions_refuse_writes_and_on_sqlite_never_wait_for_a_writer(registry, db_url):
    """`Database.reading()` (the per-request key, version and watermark lookups) refuses any
    write, on both databases; on SQLite it begins deferred, so a lookup answers while another
    connection holds the write lock (an audit record in the middle of its fsync), where a
    `session()` would queue behind it."""
    import threading

    from sqlalchemy import text, update

    from service.registry.db import Database, ReadOnlyViolation
    from service.registry.models import RegistryStateRow

    db = Database.of(registry.engine)
    before = db.version()
    for write in (update(RegistryStateRow).values(version=RegistryStateRow.version + 1),
                  text("DELETE FROM registry_state"), text("  insert into tenants (id) values ('x')")):
        with pytest.raises(ReadOnlyViolation):
            with db.reading() as conn:
                conn.execute(write)
    assert db.version() == before  # nothing was written
    if db.postgres:
        return
    held, release = threading.Event(), threading.Event()

    def writer() -> None:
        with db.session() as s, s.begin():  # BEGIN IMMEDIATE: SQLite's write lock
            Database.bump_version(s)
            held.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert held.wait(10)
        # the committed version, at once: a queued read would wait out the 30 s busy timeout
        # and fail with "database is locked", since the writer lets go only after it
        assert db.version() == before
    finally:
        release.set()
        thread.join(10)
    assert db.version() == before + 1
