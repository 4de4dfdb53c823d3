"""Polling for a condition in tests: one loop, with room for a loaded CI machine."""

from __future__ import annotations

import time


def wait_for(check, timeout: float = 120.0, every: float = 0.2):
    """`check()`'s first truthy value, polled every `every` seconds; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting")
