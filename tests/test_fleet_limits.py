"""Fleet-wide rate limits: a key's requests per minute hold across every gateway on one registry.

Two gateways are two `Tenancy` admissions (each with its own engine, its own in-process
limiter state and its own clock reader) over one registry database, as two pods on one
PostgreSQL (or two processes on one SQLite file): what each admits is decided by the one
atomic upsert of `service.registry.limits`. Time is the registry's injectable clock
(`Database.now`), never a sleep. Every test runs on SQLite, and again on PostgreSQL when
ATELIER_TEST_PG_URL is set (conftest's `db_url`; `.ci/run` starts one).

The store failing: the limiter answers 503 `limits_unavailable` with Retry-After, and admits
nothing, whether its database file cannot be opened, its table is missing, or PostgreSQL is
cut mid-service (a TCP proxy stopped, as in tests/test_reliability_faults.py).
"""

from __future__ import annotations

import os
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest
from fastapi import FastAPI, Request
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from service.errors import LimitsUnavailable
from service.gateway.errors import ERROR_CODES, install_error_handlers
from service.registry import Database, Registry, open_registry
from service.registry.limits import RateLimits
from service.tenancy import KeyRef, Limits, Tenancy
from service.tenancy.ratelimit import RateLimited, RateLimiter, burst_of

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
PG_ENV = "ATELIER_TEST_PG_URL"


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def gateway(db_url: str, clock: Clock) -> Tenancy:
    """One gateway's admission: its own engine and in-process limiter, the shared database."""
    return Tenancy.build(Registry(Database(db_url, now=clock)), on_revoked=lambda twin: None)


@pytest.fixture
def fleet(db_url):
    clock = Clock()
    setup = open_registry(db_url)  # migrations to head (0008: rate_limits)
    setup.create_tenant("acme", "Acme")
    a, b = gateway(db_url, clock), gateway(db_url, clock)
    yield setup, a, b, clock
    for registry in (setup, a.registry, b.registry):
        registry.engine.dispose()


def try_admit(tenancy: Tenancy, token: str) -> bool:
    try:
        with tenancy.admit(f"Bearer {token}", "generate", limits=Limits.REQUEST):
            return True
    except RateLimited as refused:
        assert refused.code == "rate_limited" and refused.retry_after >= 1
        return False


def test_a_key_limited_to_r_a_minute_gets_at_most_r_plus_ten_percent_over_two_gateways(fleet):
    setup, a, b, clock = fleet
    rate = 60
    _, token = setup.create_api_key("acme", ["generate"], requests_per_minute=rate, max_concurrent_jobs=4)
    admitted: list[float] = []
    step = 0.5
    for tick in range(int(150 / step)):  # 2.5 minutes, each gateway asked twice every half second
        for tenancy in (a, b, a, b):
            if try_admit(tenancy, token):
                admitted.append(tick * step)
        clock.advance(step)
    per_minute = [sum(1 for t in admitted if start <= t < start + 60) for start in range(0, 91)]
    assert max(per_minute) <= rate * 1.1, max(per_minute)
    assert min(per_minute) >= rate * 0.9, min(per_minute)  # and the key does get its rate, both gateways serving
    assert len(admitted) <= rate * 150 / 60 + burst_of(rate)


def test_two_gateways_racing_on_one_key_admit_exactly_its_burst(fleet):
    setup, a, b, clock = fleet  # the clock stands still: only the burst can be admitted, however they interleave
    rate = 100
    key_id, _ = setup.create_api_key("acme", ["generate"], requests_per_minute=rate, max_concurrent_jobs=100)
    admitted, lock = [], threading.Lock()

    def hammer(tenancy: Tenancy) -> None:
        for _ in range(8):
            try:
                with tenancy.admit(KeyRef(key_id), "generate", limits=Limits.REQUEST):
                    with lock:
                        admitted.append(1)
            except RateLimited:
                pass

    threads = [threading.Thread(target=hammer, args=(t,)) for t in (a, b, a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == burst_of(rate) == 11


def test_the_limit_recovers_with_time_and_says_when(fleet):
    setup, a, b, clock = fleet
    rate = 20  # one every 3 s, 3 at once
    _, token = setup.create_api_key("acme", ["generate"], requests_per_minute=rate)
    assert [try_admit(g, token) for g in (a, b, a, b)] == [True, True, True, False]
    with pytest.raises(RateLimited) as refused, b.admit(f"Bearer {token}", "generate"):
        pass
    assert refused.value.retry_after == 3  # the next conforming moment, in whole seconds
    clock.advance(refused.value.retry_after)
    assert [try_admit(b, token), try_admit(a, token)] == [True, False]
    clock.advance(60)  # an idle minute: the burst is back, no more
    assert [try_admit(g, token) for g in (b, a, b, a)] == [True, True, True, False]
    with a.admit(f"Bearer {token}", "generate", limits=Limits.NONE):  # a job's item spends nothing
        pass


def test_a_spent_key_flooding_a_gateway_costs_the_limit_store_nothing_until_it_conforms(fleet):
    setup, a, b, clock = fleet
    key_id, _ = setup.create_api_key("acme", ["generate"], requests_per_minute=30)  # one every 2 s, 4 at once
    with a.admit(KeyRef(key_id), "generate") as principal:  # identified once, as a Studio session is
        pass
    statements: list[str] = []
    for tenancy in (a, b):
        event.listen(tenancy.registry.engine, "before_cursor_execute",
                     lambda conn, cursor, sql, params, context, many: statements.append(sql))

    def limiter_statements() -> int:
        return sum("rate_limits" in sql for sql in statements)

    admitted = [try_admit_principal(g, principal) for g in (a, b, a, b)]
    assert admitted == [True, True, True, False] and limiter_statements() == 5  # 4 upserts, 1 read
    for _ in range(200):  # the flood: refused by gateway b from memory
        assert not try_admit_principal(b, principal)
    assert limiter_statements() == 5
    assert not try_admit_principal(a, principal)  # gateway a has not been refused yet: it asks, once
    assert limiter_statements() == 7
    clock.advance(1.9)
    assert not any(try_admit_principal(g, principal) for g in (a, b)) and limiter_statements() == 7
    clock.advance(0.1)  # the moment the store named: asked again, and admitted
    assert try_admit_principal(b, principal) and limiter_statements() == 8
    assert not try_admit_principal(a, principal)  # b took it: a asks and is refused again
    assert limiter_statements() == 10


def try_admit_principal(tenancy: Tenancy, principal) -> bool:
    try:
        with tenancy.admit(principal, "generate", limits=Limits.REQUEST):
            return True
    except RateLimited:
        return False


def test_keys_do_not_share_a_bucket_and_job_items_spend_nothing(fleet):
    setup, a, b, clock = fleet
    _, one = setup.create_api_key("acme", ["generate"], requests_per_minute=1)
    _, other = setup.create_api_key("acme", ["generate"], requests_per_minute=1)
    assert [try_admit(a, one), try_admit(b, one), try_admit(b, other)] == [True, False, True]
    for _ in range(5):
        with b.admit(f"Bearer {one}", "generate", limits=Limits.NONE):
            pass


# -- failing safe ---------------------------------------------------------------------------


def http_app(tenancy: Tenancy) -> TestClient:
    """A route admitted like the gateway's, answered by the gateway's error handlers."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/v1/admitted")
    def admitted(request: Request):
        with tenancy.admit(request.headers.get("authorization"), "generate", route="/v1/admitted"):
            return {"ok": True}

    return TestClient(app, raise_server_exceptions=False)


def test_an_unreachable_limit_store_answers_503_limits_unavailable_and_admits_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    registry = open_registry(url)
    registry.create_tenant("acme", "Acme")
    _, token = registry.create_api_key("acme", ["generate"], requests_per_minute=1000, max_concurrent_jobs=1)
    tenancy = Tenancy.build(registry, on_revoked=lambda twin: None)
    # The key is checked in the registry, but the limits' store cannot be opened.
    tenancy.limiter = RateLimiter(store=RateLimits(Database(f"sqlite:///{tmp_path / 'gone' / 'limits.db'}")))
    client = http_app(tenancy)
    for _ in range(3):
        answer = client.get("/v1/admitted", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "limits_unavailable"
        assert int(answer.headers["Retry-After"]) >= 1
        assert "sqlite" not in answer.text.lower() and "limits.db" not in answer.text
    assert ERROR_CODES["limits_unavailable"] == 503
    # The store back: the key's one concurrent slot was not leaked by the refusals.
    tenancy.limiter = RateLimiter(store=registry.limits)
    assert client.get("/v1/admitted", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    registry.engine.dispose()


def test_a_missing_limits_table_refuses_rather_than_admitting(db_url):
    registry = open_registry(db_url)
    registry.create_tenant("acme", "Acme")
    key_id, _ = registry.create_api_key("acme", ["generate"])
    with registry.engine.begin() as conn:
        conn.execute(text("DROP TABLE rate_limits"))
    tenancy = Tenancy.build(registry, on_revoked=lambda twin: None)
    with pytest.raises(LimitsUnavailable) as refused, tenancy.admit(KeyRef(key_id), "generate"):
        pass
    assert (refused.value.status, refused.value.code) == (503, "limits_unavailable")
    with tenancy.admit(KeyRef(key_id), "generate", limits=Limits.NONE):  # nothing to count: still served
        pass
    registry.engine.dispose()


def test_postgres_cut_gives_503_limits_unavailable_then_recovers(tmp_path):
    url = os.environ.get(PG_ENV)
    if not url:
        print(f"\n{PG_ENV} is not set: the PostgreSQL limit-store fault test is skipped", file=sys.stderr)
        pytest.skip(f"{PG_ENV} is not set: the PostgreSQL limit-store fault test needs a throwaway PostgreSQL")
    from tests.conftest import reset_pg
    from tests.reliability_support import TcpProxy

    reset_pg(url)
    parsed = make_url(url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    proxy.start()
    proxied = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    registry = open_registry(proxied)
    try:
        registry.create_tenant("acme", "Acme")
        _, token = registry.create_api_key("acme", ["generate"], requests_per_minute=1000)
        tenancy = Tenancy.build(registry, on_revoked=lambda twin: None)
        with tenancy.admit(f"Bearer {token}", "generate") as principal:
            pass
        proxy.stop()  # PostgreSQL is gone; a request already identified (Studio's) meets the limiter alone
        for _ in range(3):
            with pytest.raises(LimitsUnavailable) as refused, tenancy.admit(principal, "generate"):
                pass
            assert refused.value.response_headers()["Retry-After"] == "5"
        proxy.start()  # and back, on the same address
        with tenancy.admit(principal, "generate"):
            pass
    finally:
        proxy.stop()
        registry.engine.dispose()


def test_spending_does_not_wait_for_the_disk_and_leaves_the_pool_as_it_was(db_url):
    """The limit's upsert commits without an fsync wait (`Database.ephemeral`), and the
    setting never leaks to the next transaction on the same pooled connection: an audit record
    committed after it is synced as before."""
    registry = open_registry(db_url)
    db = registry.db
    setting = "SHOW synchronous_commit" if db.postgres else "PRAGMA synchronous"
    with db.engine.connect() as conn:
        before = conn.exec_driver_sql(setting).scalar()
    with db.ephemeral() as conn:
        during = conn.exec_driver_sql(setting).scalar()
    assert str(during).lower() in ("off", "1")  # PostgreSQL: off; SQLite: NORMAL
    for _ in range(3):
        assert registry.limits.spend("rpm:pool-check", 60, 3).admitted
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql(setting).scalar() == before
    assert str(before).lower() in ("on", "2")  # synchronous commits everywhere else (FULL on SQLite)
    registry.engine.dispose()
