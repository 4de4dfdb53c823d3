"""A job's `job.completed` is always its last webhook event: after every `job.item.completed`.

Against the real registry (SQLite, and PostgreSQL when ATELIER_TEST_PG_URL is set): the item
events are queued in the transaction that records the item (or the review decision), and the
sender never claims a job's `job.completed` while another event of that job is pending, so
neither a failed last item nor an item event that is retrying can arrive after it.
"""

from __future__ import annotations


import pytest

from service.registry import JobStore, open_registry


@pytest.fixture()
def store(db_url):
    registry = open_registry(db_url)
    registry.create_tenant("acme", "Acme")
    store = JobStore(registry.engine)
    store.set_tenant_delivery("acme", webhook_url="https://hooks.example.com/atelier", webhook_secret="whsec_" + "A" * 32)
    yield store, registry.create_api_key("acme", ["generate"])[0]
    registry.engine.dispose()


def per_item_job(store: JobStore, key_id: str, n: int, *, review: bool = False):
    return store.create_job("acme", key_id, [{"twin_id": "ava", "sku": f"S-{i}"} for i in range(n)], priority=5,
                            output_target="inline", url_expiry_s=60, webhook_per_item=True, review=review)


def sent_in_order(store: JobStore) -> list[tuple[str, int | None]]:
    """Drain the delivery log as the webhook sender does (claim, post, record as delivered)."""
    order = []
    while (delivery := store.claim_due_delivery(30)) is not None:
        order.append((delivery.event_type, delivery.payload["data"].get("index")))
        store.record_attempt(delivery.id, ok=True, status_code=204, error=None, duration_ms=1.0, retry_in_s=None)
    return order


def test_a_failed_last_item_is_announced_before_job_completed(store):
    store, key_id = store
    job = per_item_job(store, key_id, 2)
    first, last = store.lease_items("worker", 30, limit=2)
    store.finish_item(first, result={"images": []})
    finish = store.finish_item(last, error={"code": "render_failed", "message": "blank", "field": None})
    assert finish.job_closed is not None  # this call closed the job and queued job.completed
    order = sent_in_order(store)
    assert order == [("job.item.completed", 0), ("job.item.completed", 1), ("job.completed", None)]
    events = {e.payload["data"].get("index"): e.payload["data"] for e in store.deliveries("acme", job.id)}
    assert events[1]["status"] == "failed" and events[1]["error"] == "render_failed"


def test_job_completed_waits_while_an_item_event_is_retrying(store):
    store, key_id = store
    per_item_job(store, key_id, 1)
    (lease,) = store.lease_items("worker", 30)
    store.finish_item(lease, error={"code": "render_failed", "message": "blank", "field": None})
    item_event = store.claim_due_delivery(0)  # hold 0 s: due again at once
    assert item_event.event_type == "job.item.completed"
    store.record_attempt(item_event.id, ok=False, status_code=500, error="HTTP 500", duration_ms=1.0, retry_in_s=0)
    # The item event is pending again (a later retry); job.completed must not overtake it.
    later = store.claim_due_delivery(30)
    assert later is None or later.event_type == "job.item.completed", later


def test_review_decisions_are_announced_before_job_completed(store):
    store, key_id = store
    per_item_job(store, key_id, 2, review=True)
    leases = store.lease_items("worker", 30, limit=2)
    for lease in leases:
        store.finish_item(lease, result={"images": [], "sku": lease.spec["sku"]})
    job_id = leases[0].job_id
    store.decide_items("acme", job_id, {0: {"images": []}}, approve=True)
    decided, closed = store.decide_items("acme", job_id, {1: {"images": []}}, approve=False)
    assert decided == [1] and closed is not None
    order = sent_in_order(store)
    assert order == [("job.item.completed", 0), ("job.item.completed", 1), ("job.completed", None)]
