"""A key's open-jobs limit holds across gateways: the count and the insert are one transaction
under the key's row lock, so submissions racing from many gateways cannot all take the last
slot (SQLite, and PostgreSQL when ATELIER_TEST_PG_URL is set)."""

from __future__ import annotations

import threading
import time

from sqlalchemy import event

from service.registry import JobStore, TooManyOpenJobs, open_registry


def widen_the_race(engine) -> None:
    """Each count of open jobs takes 0.2 s longer: without the lock, every racer would count
    before any inserts."""
    @event.listens_for(engine, "after_cursor_execute")
    def slow_count(conn, cursor, statement, parameters, context, executemany):
        if "count(" in statement.lower() and "jobs" in statement:
            time.sleep(0.2)


def test_racing_submissions_take_a_keys_last_slot_once(db_url):
    registry = open_registry(db_url)
    registry.create_tenant("acme", "Acme")
    key_id, _ = registry.create_api_key("acme", ["generate"], max_concurrent_jobs=2)
    jobs = [JobStore(open_registry(db_url).engine) for _ in range(8)]  # eight gateways, eight pools
    jobs[0].jobs.create_job("acme", key_id, [{"prompt": "first"}], priority=0, output_target="inline",
                            url_expiry_s=60, webhook_per_item=False, max_open=2)
    for store in jobs:
        widen_the_race(store.jobs.db.engine)
    barrier = threading.Barrier(len(jobs))
    created, refused = [], []

    def submit(store: JobStore) -> None:
        barrier.wait()
        try:
            created.append(store.jobs.create_job("acme", key_id, [{"prompt": "race"}], priority=0,
                                                 output_target="inline", url_expiry_s=60, webhook_per_item=False,
                                                 max_open=2))
        except TooManyOpenJobs as exc:
            refused.append((exc.status, exc.code, exc.open_jobs, exc.limit))

    threads = [threading.Thread(target=submit, args=(store,)) for store in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(created) == 1 and refused == [(429, "too_many_concurrent", 2, 2)] * 7
    assert jobs[0].jobs.open_jobs(key_id) == 2
    for store in jobs:
        store.jobs.db.engine.dispose()
    registry.engine.dispose()
