"""The webhook sender of one replica: takes due deliveries from the shared log and posts them.

Owns: the sender thread, turning a queued event into a signed POST (`webhooks.post_webhook`)
with the tenant's current secret, and recording every attempt with the next try per the
retry schedule (five tries over about 30 minutes by default) or the final outcome. Several
replicas may run it: a delivery is claimed before it is sent, so each attempt is made once.
Must never block a request or a job: events are queued (`Deliveries.enqueue_event`, or in
the transaction that closes a job) and sent from here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from service.registry import Deliveries
from service.jobs.webhooks import RETRY_SCHEDULE_S, next_attempt_delay, post_webhook

log = logging.getLogger("atelier.webhooks")
CLAIM_HOLD_S = 120.0  # longer than one attempt can take (its timeout): no double send


class WebhookDispatcher:
    def __init__(self, store: Deliveries, *, allow_private: bool, schedule: tuple[float, ...] = RETRY_SCHEDULE_S,
                 poll_s: float = 0.5, timeout_s: float = 10.0, housekeeping: Callable[[], object] = lambda: None,
                 housekeeping_s: float = 3600.0):
        self.housekeeping = housekeeping  # e.g. purge expired idempotency keys, once per housekeeping_s
        self.housekeeping_s = housekeeping_s
        self.store = store
        self.allow_private = allow_private
        self.schedule = schedule
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wake.set()

    def send_due(self) -> bool:
        """Make one due attempt; False when nothing is due."""
        delivery = self.store.claim_due_delivery(CLAIM_HOLD_S)
        if delivery is None:
            return False
        secret = self.store.tenant_delivery(delivery.tenant_id).webhook_secret
        if not secret:
            self.store.record_attempt(delivery.id, ok=False, status_code=None, error="the tenant has no webhook secret",
                                      duration_ms=0.0, retry_in_s=None)
            return True
        attempt = post_webhook(delivery.url, secret, delivery.id, delivery.payload, allow_private=self.allow_private,
                               timeout_s=self.timeout_s)
        retry = None if attempt.ok else next_attempt_delay(delivery.attempts + 1, self.schedule)
        self.store.record_attempt(delivery.id, ok=attempt.ok, status_code=attempt.status_code, error=attempt.error,
                                  duration_ms=attempt.duration_ms, retry_in_s=retry)
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="atelier-webhooks", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        last_housekeeping = 0.0
        while not self._stop.is_set():
            if time.monotonic() - last_housekeeping >= self.housekeeping_s:
                last_housekeeping = time.monotonic()
                try:
                    self.housekeeping()
                except Exception:
                    log.exception("housekeeping failed")
            try:
                sent = self.send_due()
            except Exception:
                log.exception("webhook dispatch failed")
                sent = False
            if not sent:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(15)
