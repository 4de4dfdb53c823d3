"""The job queue at item level: items leased one by one with fencing tokens, lost leases,
release, priority and groups, cancellation, paged reads; deficit round robin across tenants.

Every database test runs against SQLite, and again against PostgreSQL when
ATELIER_TEST_PG_URL is set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/atelier_test);
each PostgreSQL test starts from an empty schema (every registry table in that database is
dropped), so point it at a throwaway database only. The clock is injected throughout.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, text

from service.errors import InvalidRequest
from service.jobs.fairness import DeficitRoundRobin
from service.registry import ItemLease, ItemNotFound, JobNotFound, JobStore
from service.registry import make_engine, open_registry

T0 = datetime.now(timezone.utc).replace(microsecond=0)
HOOK = {"webhook_url": "https://hooks.example.com/atelier", "webhook_secret": "whsec_dGVzdA=="}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture()
def registry(db_url):
    registry = open_registry(db_url)
    registry.create_tenant("acme", "Acme")
    registry.create_tenant("globex", "Globex")
    yield registry
    registry.engine.dispose()


@pytest.fixture()
def store(registry) -> JobStore:
    return JobStore(registry.engine)


@pytest.fixture()
def key_id(registry) -> str:
    return registry.create_api_key("acme", ["generate"])[0]


def submit(store: JobStore, key_id: str, n: int = 1, *, priority: int = 5, tenant: str = "acme", specs=None):
    items = specs if specs is not None else [{"twin_id": "ava", "sku": f"S-{i}"} for i in range(n)]
    return store.create_job(tenant, key_id, items, priority=priority, output_target="inline", url_expiry_s=60,
                            webhook_per_item=False)


def completed_events(store: JobStore, job_id: str) -> list:
    return [d for d in store.deliveries("acme", job_id) if d.event_type == "job.completed"]


# -- leasing ------------------------------------------------------------------------------


def test_two_owners_leasing_in_turns_split_a_job_one_item_each(store, key_id):
    job = submit(store, key_id, 10)
    got: dict[str, list[ItemLease]] = {"a": [], "b": []}
    for turn in range(10):
        owner = "ab"[turn % 2]
        leases = store.lease_items(owner, 30, now=T0)
        assert len(leases) == 1
        got[owner].extend(leases)
    assert store.lease_items("c", 30, now=at(1)) == []  # all held
    assert [lease.index for lease in got["a"]] == [0, 2, 4, 6, 8]
    assert [lease.index for lease in got["b"]] == [1, 3, 5, 7, 9]
    every = got["a"] + got["b"]
    assert sorted(lease.index for lease in every) == list(range(10))  # each item exactly once
    assert {(lease.token, lease.attempt, lease.lease_until) for lease in every} == {(1, 1, at(30))}
    first = got["a"][0]
    assert (first.job_id, first.tenant_id, first.key_id, first.spec) == (job.id, "acme", key_id, {"twin_id": "ava", "sku": "S-0"})
    assert (first.priority, first.output_target, first.url_expiry_s, first.webhook_per_item) == (5, "inline", 60, False)
    after = store.get_job("acme", job.id, with_items=False)
    assert (after.status, after.started_at) == ("running", T0)
    item = store.get_item("acme", job.id, 3)
    assert (item.status, item.lease_token, item.attempts) == ("running", 1, 1)


def test_racing_owners_never_get_the_same_item(store, key_id):
    jobs = [submit(store, key_id, 20), submit(store, key_id, 20)]
    start = threading.Barrier(6)
    got: list[ItemLease] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(owner: str) -> None:
        try:
            start.wait()
            while leases := store.lease_items(owner, 60, limit=2, now=T0):
                with lock:
                    got.extend(leases)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"owner-{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    keys = [(lease.job_id, lease.index) for lease in got]
    assert len(keys) == 40 and len(set(keys)) == 40  # every item once, none twice
    assert {lease.token for lease in got} == {1}
    assert {job_id for job_id, _ in keys} == {job.id for job in jobs}


def test_a_lost_lease_cannot_record_and_the_job_closes_once(store, key_id):
    store.set_tenant_delivery("acme", **HOOK)
    job = submit(store, key_id, 1)
    [a] = store.lease_items("owner-a", 30, now=T0)
    assert a.token == 1 and store.holds(a, now=at(10))
    assert store.lease_items("owner-b", 30, now=at(10)) == []  # still held by a
    [b] = store.lease_items("owner-b", 30, now=at(31))  # a's lease lapsed: its holder looks dead
    assert (b.job_id, b.index, b.token, b.attempt) == (job.id, 0, 2, 2)
    assert not store.holds(a, now=at(31)) and store.holds(b, now=at(31))
    assert store.renew_items([a, b], 30, now=at(32)) == [False, True]

    lost = store.finish_item(a, result={"images": ["from-a"]}, now=at(33))
    assert (lost.recorded, lost.job_closed) == (False, None)
    item = store.get_item("acme", job.id, 0)
    assert (item.status, item.result, item.lease_token) == ("running", None, 2)

    won = store.finish_item(b, result={"images": ["from-b"]}, now=at(34))
    assert won.recorded and won.job_closed is not None
    assert (won.job_closed.status, won.job_closed.items_done, won.job_closed.finished_at) == ("completed", 1, at(34))
    assert store.finish_item(a, result={"images": ["late"]}, now=at(35)).recorded is False
    assert store.finish_item(b, result={"images": ["twice"]}, now=at(35)).recorded is False
    assert store.get_item("acme", job.id, 0).result == {"images": ["from-b"]}
    events = completed_events(store, job.id)
    assert len(events) == 1 and events[0].payload["data"]["status"] == "completed"
    assert store.get_job("acme", job.id, with_items=False).items_done == 1


def test_finishers_racing_on_the_last_items_close_the_job_once(store, key_id):
    store.set_tenant_delivery("acme", **HOOK)
    job = submit(store, key_id, 6)
    leases = [store.lease_items(f"owner-{i}", 60, now=T0)[0] for i in range(6)]
    start = threading.Barrier(len(leases))
    outcomes: list = []

    def finish(lease: ItemLease) -> None:
        start.wait()
        outcomes.append(store.finish_item(lease, result={"images": []}, error=None if lease.index else {"code": "x"},
                                          now=at(5)))

    threads = [threading.Thread(target=finish, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(outcomes) == 6 and all(o.recorded for o in outcomes)
    assert len([o for o in outcomes if o.job_closed is not None]) == 1
    final = store.get_job("acme", job.id, with_items=False)
    assert (final.status, final.items_done, final.items_failed) == ("completed", 5, 1)
    assert len(completed_events(store, job.id)) == 1


def test_release_gives_the_item_back_and_the_next_lease_takes_the_next_token(store, key_id):
    job = submit(store, key_id, 2)
    first, second = store.lease_items("owner-a", 30, limit=2, now=T0)
    assert store.release_items([first], now=at(1)) == 1
    item = store.get_item("acme", job.id, 0)
    assert (item.status, item.lease_token, item.attempts) == ("pending", 1, 0)  # token kept, attempt uncounted
    assert store.release_items([first], now=at(1)) == 0  # already given back
    assert not store.holds(first, now=at(1))
    assert store.finish_item(first, result={"images": []}, now=at(2)).recorded is False

    [again] = store.lease_items("owner-b", 30, now=at(2))  # well before a's lease would have lapsed
    assert (again.index, again.token, again.attempt) == (0, 2, 1)
    assert store.release_items([first], now=at(3)) == 0  # a stale lease cannot give b's lease away
    assert store.holds(again, now=at(3))
    assert store.finish_item(again, result={"images": []}, now=at(4)).recorded
    closed = store.finish_item(second, result={"images": []}, now=at(5)).job_closed
    assert closed is not None and closed.status == "completed" and closed.items_done == 2


# -- order and groups ---------------------------------------------------------------------


def test_priority_within_a_tenant_then_oldest_then_index_and_one_job_per_lease(store, key_id, registry):
    low, high, high_later = submit(store, key_id, 2, priority=1), submit(store, key_id, 2, priority=8), submit(store, key_id, 2, priority=8)
    other = submit(store, registry.create_api_key("globex", ["generate"])[0], 1, priority=9, tenant="globex")
    assert store.runnable_tenants(now=T0) == ["acme", "globex"]

    order = []
    while leases := store.lease_items("w", 30, tenant_id="acme", limit=10, now=T0):
        assert len({lease.job_id for lease in leases}) == 1  # one job per lease call
        order.append((leases[0].job_id, [lease.index for lease in leases]))
    assert order == [(high.id, [0, 1]), (high_later.id, [0, 1]), (low.id, [0, 1])]
    assert store.runnable_tenants(now=T0) == ["globex"]  # acme's items are all held
    [lease] = store.lease_items("w", 30, now=T0)  # any tenant: highest priority first
    assert lease.job_id == other.id and lease.tenant_id == "globex"
    assert store.runnable_tenants(now=T0) == []
    assert store.runnable_tenants(now=at(31)) == ["acme", "globex"]  # every lease lapsed


def test_group_of_keeps_a_lease_homogeneous(store, key_id):
    specs = [{"twin_id": "ava" if i % 2 == 0 else "bo", "width": 512 if i < 6 else 768} for i in range(8)]
    job = submit(store, key_id, specs=specs)
    group = lambda spec: (spec["twin_id"], spec["width"])  # noqa: E731
    rounds = []
    while leases := store.lease_items("w", 30, limit=3, group_of=group, now=T0):
        assert len({group(lease.spec) for lease in leases}) == 1
        rounds.append([lease.index for lease in leases])
    assert rounds == [[0, 2, 4], [1, 3, 5], [6], [7]]
    assert all(item.status == "running" for item in store.job_page("acme", job.id, offset=0, limit=8)[1])


# -- cancellation -------------------------------------------------------------------------


def test_cancel_cancels_pending_items_at_once_and_lets_running_ones_finish(store, key_id):
    store.set_tenant_delivery("acme", **HOOK)
    job = submit(store, key_id, 5)
    first, second = store.lease_items("w", 30, limit=2, now=T0)
    requested = store.request_cancel("acme", job.id, now=at(1))
    assert requested.cancel_requested and requested.status == "running"
    assert [i.status for i in store.job_page("acme", job.id, offset=0, limit=5)[1]] == ["running"] * 2 + ["canceled"] * 3
    assert store.lease_items("other", 30, now=at(2)) == [] and store.runnable_tenants(now=at(2)) == []

    done = store.finish_item(first, result={"images": []}, now=at(3))
    assert done.recorded and done.job_closed is None and completed_events(store, job.id) == []
    last = store.finish_item(second, error={"code": "render_failed"}, now=at(4))
    assert last.recorded and last.job_closed is not None and last.job_closed.status == "canceled"
    assert store.request_cancel("acme", job.id, now=at(5)).status == "canceled"  # again: nothing new
    events = completed_events(store, job.id)
    assert len(events) == 1 and events[0].payload["data"]["status"] == "canceled"
    final = store.get_job("acme", job.id, with_items=False)
    assert (final.items_done, final.items_failed, final.finished_at) == (1, 1, at(4))


def test_cancel_closes_a_job_at_once_when_nothing_runs_and_reaps_lapsed_or_released_items(store, key_id):
    store.set_tenant_delivery("acme", **HOOK)
    queued = submit(store, key_id, 3)
    assert store.request_cancel("acme", queued.id, now=T0).status == "canceled"
    assert len(completed_events(store, queued.id)) == 1

    for reap in (lambda: store.lease_items("w", 30, now=at(31)), lambda: store.runnable_tenants(now=at(31))):
        lapsed = submit(store, key_id, 2)
        [held] = store.lease_items("dies", 30, now=T0)
        assert store.request_cancel("acme", lapsed.id, now=at(1)).status == "running"
        assert store.lease_items("w", 30, now=at(2)) == []  # being canceled: nothing more is leased
        assert store.get_job("acme", lapsed.id, with_items=False).status == "running"  # its holder may still finish
        assert reap() == []  # its holder died: the lapsed item is canceled, not re-leased
        assert store.get_job("acme", lapsed.id, with_items=False).status == "canceled"
        assert store.get_item("acme", lapsed.id, 0).status == "canceled"
        assert store.finish_item(held, result={"images": []}, now=at(32)).recorded is False
        assert len(completed_events(store, lapsed.id)) == 1

    released = submit(store, key_id, 1)
    [lease] = store.lease_items("w", 30, now=T0)
    store.request_cancel("acme", released.id, now=at(1))
    assert store.release_items([lease], now=at(2)) == 1
    assert store.get_item("acme", released.id, 0).status == "canceled"
    assert store.get_job("acme", released.id, with_items=False).status == "canceled"
    assert len(completed_events(store, released.id)) == 1


# -- paged reads --------------------------------------------------------------------------


def test_job_page_reads_one_slice_and_get_item_is_tenant_scoped(store, key_id):
    job = submit(store, key_id, 7)
    for lease in store.lease_items("w", 30, limit=3, now=T0):
        store.finish_item(lease, result={"images": [f"img-{lease.index}"]}, now=at(1))

    statements: list[str] = []
    listen = lambda conn, cursor, statement, *args: statements.append(statement)  # noqa: E731
    event.listen(store.engine, "before_cursor_execute", listen)
    try:
        head, page = store.job_page("acme", job.id, offset=2, limit=3)
    finally:
        event.remove(store.engine, "before_cursor_execute", listen)
    assert [i.index for i in page] == [2, 3, 4]
    assert [i.status for i in page] == ["done", "pending", "pending"] and page[0].result == {"images": ["img-2"]}
    assert (head.id, head.items_total, head.items_done, head.items) == (job.id, 7, 3, ())  # no items loaded with it
    assert any("LIMIT" in s.upper() and "OFFSET" in s.upper() for s in statements)  # the database slices, not Python
    assert [i.index for i in store.job_page("acme", job.id, offset=6, limit=5)[1]] == [6]
    assert store.job_page("acme", job.id, offset=7, limit=5)[1] == []
    for offset, limit, field in [(-1, 5, "offset"), (0, 0, "limit"), (True, 5, "offset")]:
        with pytest.raises(InvalidRequest) as bad:
            store.job_page("acme", job.id, offset=offset, limit=limit)
        assert bad.value.field == field

    item = store.get_item("acme", job.id, 1)
    assert (item.index, item.status, item.result, item.lease_token, item.attempts) == (1, "done", {"images": ["img-1"]}, 1, 1)
    for tenant, job_id in [("globex", job.id), ("acme", "no-such-job"), ("acme", "x" * 40)]:
        with pytest.raises(JobNotFound):
            store.get_item(tenant, job_id, 0)
    with pytest.raises(JobNotFound):
        store.job_page("globex", job.id, offset=0, limit=5)
    for index in (7, -1, 2**40):
        with pytest.raises(ItemNotFound) as missing:
            store.get_item("acme", job.id, index)
        assert (missing.value.status, missing.value.code, missing.value.field) == (404, "item_not_found", "index")


# -- fairness across tenants --------------------------------------------------------------


def simulate(drr: DeficitRoundRobin, queued: dict[str, int], picks: int, arrivals=None) -> list[str]:
    """Picks of one item each, as the dispatcher would: runnable tenants, pick, lease, charge."""
    order = []
    for step in range(picks):
        queued.update((arrivals or {}).get(step, {}))
        tenant = drr.pick(sorted(t for t, n in queued.items() if n > 0))
        if tenant is None:
            break
        queued[tenant] -= 1
        drr.charge(tenant, 1)
        order.append(tenant)
    return order


def test_drr_a_small_job_submitted_later_is_not_stuck_behind_a_big_one():
    drr = DeficitRoundRobin()
    # Tenant A's 200 items are queued first and A is served alone for a while; B's 5 arrive later.
    order = simulate(drr, {"tenant-a": 200}, 205, arrivals={3: {"tenant-b": 5}})
    assert order[:3] == ["tenant-a"] * 3
    later = order[3:]
    assert [i for i, t in enumerate(later) if t == "tenant-b"] == [1, 3, 5, 7, 9]  # all within 10 picks
    assert order.count("tenant-a") == 200 and len(order) == 205

    fresh = simulate(DeficitRoundRobin(), {"tenant-a": 200, "tenant-b": 5}, 10)
    assert fresh.count("tenant-b") == 5


def test_drr_alternates_under_equal_load_and_is_deterministic():
    order = simulate(DeficitRoundRobin(), {"acme": 10, "globex": 10, "initech": 10}, 30)
    assert order == ["acme", "globex", "initech"] * 10
    assert simulate(DeficitRoundRobin(), {"b": 6, "a": 6}, 12) == simulate(DeficitRoundRobin(), {"a": 6, "b": 6}, 12)
    assert DeficitRoundRobin().pick([]) is None


def test_drr_a_group_overdraws_and_a_tenant_that_drops_out_loses_its_deficit():
    drr = DeficitRoundRobin()
    assert drr.pick(["a", "b"]) == "a"
    drr.charge("a", 4)  # a group of 4 items leased at once
    assert drr.deficits() == {"a": -3, "b": 0}
    after = []
    for _ in range(5):
        tenant = drr.pick(["a", "b"])
        drr.charge(tenant, 1)
        after.append(tenant)
    assert after == ["b", "b", "b", "b", "a"]  # a sits out three turns: 4 items each, then a again

    drr.charge(drr.pick(["a", "b"]), 4)  # b's turn: b overdraws by 3
    assert drr.deficits()["b"] == -3
    assert drr.pick(["a"]) == "a"  # b ran dry: it leaves the ring and its deficit goes
    assert "b" not in drr.deficits()
    drr.charge("a", 1)
    assert drr.pick(["a", "b"]) == "a" and drr.deficits()["b"] == 0  # b rejoins behind a, with a clean slate
    drr.charge("a", 1)
    assert drr.pick(["a", "b"]) == "b"  # served on its first turn (with -3 kept, it would sit out three)


# -- the migration ------------------------------------------------------------------------


def test_item_lease_migration_keeps_queued_items_and_rolls_back(db_url):
    from sqlalchemy import inspect

    from service.registry import downgrade, upgrade
    from service.registry.migrate import current_revision, head_revision

    upgrade(db_url, "0002_jobs")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:  # a job queued before item leases existed
            conn.execute(text("INSERT INTO tenants (id, name, created_at, disabled) VALUES ('acme', 'Acme', :t, false)"), {"t": T0})
            conn.execute(text(
                "INSERT INTO jobs (id, tenant_id, key_id, status, priority, items_total, items_done, items_failed, output_target,"
                " url_expiry_s, webhook_per_item, cancel_requested, created_at) VALUES"
                " ('old', 'acme', 'k', 'queued', 5, 2, 0, 0, 'inline', 60, false, false, :t)"), {"t": T0})
            for idx in range(2):
                conn.execute(text("INSERT INTO job_items (job_id, idx, spec, status) VALUES ('old', :i, '{}', 'pending')"), {"i": idx})
        upgrade(db_url)
        assert current_revision(db_url) == head_revision()  # the head: 0004 and later apply on top
        columns = {c["name"] for c in inspect(engine).get_columns("job_items")}
        assert {"lease_owner", "lease_token", "lease_until", "attempts"} <= columns
        assert "ix_job_items_status" in {i["name"] for i in inspect(engine).get_indexes("job_items")}
        store = JobStore(engine)
        [lease] = store.lease_items("w", 30, now=T0)
        assert (lease.job_id, lease.index, lease.token, lease.attempt) == ("old", 0, 1, 1)

        downgrade(db_url, "0002_jobs")  # the running item goes back to pending for the job-level lease
        assert current_revision(db_url) == "0002_jobs"
        columns = {c["name"] for c in inspect(engine).get_columns("job_items")}
        assert not {"lease_owner", "lease_token", "lease_until", "attempts"} & columns
        with engine.connect() as conn:
            assert conn.execute(text("SELECT status FROM job_items ORDER BY idx")).scalars().all() == ["pending", "pending"]
        upgrade(db_url)
        assert current_revision(db_url) == head_revision()
    finally:
        engine.dispose()
