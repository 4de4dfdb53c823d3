"""The tiered adapter cache: device, host RAM, local disk, then the store (after LoRAX).

Owns: where each twin's adapter is held, with an LRU and a byte budget per tier; promotion
on a hit (disk -> host -> device); single flight (concurrent requests for one cold adapter
trigger one load); prefetch; eviction from every tier; counters for /metrics. Entries are
keyed by the adapter's sha256, so a new adapter version is a new entry and a file is
verified before it enters any tier. Must never touch the pipeline or the slot: it hands
out `PreparedAdapter`s and the engine copies them into the slot.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch

from service.errors import AtelierError
from service.twins.records import TwinRecord
from service.twins.slot import PreparedAdapter
from service.twins.store import AdapterStore

TIERS = ("device", "host", "disk")
SOURCES = ("device", "host", "disk", "store")


class CacheEvents(Protocol):
    def served(self, source: str, seconds: float) -> None: ...

    def evicted(self, tier: str) -> None: ...

    def resident(self, tier: str, nbytes: int) -> None: ...

    def waited(self, seconds: float) -> None:
        """A pipeline batch was ready to denoise and waited `seconds` for its adapters' loads
        (0.0: every adapter was on the device in time; see `service.engine.adapter_loads`)."""


class NoEvents:
    def served(self, source: str, seconds: float) -> None:
        pass

    def evicted(self, tier: str) -> None:
        pass

    def resident(self, tier: str, nbytes: int) -> None:
        pass

    def waited(self, seconds: float) -> None:
        pass


@dataclass(frozen=True)
class Budgets:
    device: int
    host: int
    disk: int


class LruTier:
    """An LRU map with a byte budget. Not thread-safe: the cache's lock guards it."""

    def __init__(self, name: str, budget: int):
        self.name = name
        self.budget = budget
        self.entries: OrderedDict[str, tuple[object, int]] = OrderedDict()
        self.used = 0

    def get(self, key: str):
        if key not in self.entries:
            return None
        self.entries.move_to_end(key)
        return self.entries[key][0]

    def put(self, key: str, value, nbytes: int) -> list[str]:
        """Insert as most recent, evicting least recent entries; returns the evicted keys."""
        if nbytes > self.budget:
            return []
        LruTier.pop(self, key)  # bookkeeping only: a subclass's pop may delete what it holds
        evicted = []
        while self.used + nbytes > self.budget and self.entries:
            old, (_, size) = self.entries.popitem(last=False)
            self.used -= size
            evicted.append(old)
        self.entries[key] = (value, nbytes)
        self.used += nbytes
        return evicted

    def pop(self, key: str) -> bool:
        item = self.entries.pop(key, None)
        if item is None:
            return False
        self.used -= item[1]
        return True

    def __contains__(self, key: str) -> bool:
        return key in self.entries


class DiskTier(LruTier):
    """Verified adapter files under a directory, named by sha256; survives restarts."""

    def __init__(self, directory: Path, budget: int):
        super().__init__("disk", budget)
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.directory.glob("*.safetensors"), key=lambda p: p.stat().st_mtime):
            super().put(path.stem, path, path.stat().st_size)

    def path(self, sha256: str) -> Path:
        return self.directory / f"{sha256}.safetensors"

    def write(self, sha256: str, data: bytes) -> list[str]:
        if len(data) > self.budget:
            return []
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".partial-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, self.path(sha256))
        evicted = self.put(sha256, self.path(sha256), len(data))
        for old in evicted:
            self.path(old).unlink(missing_ok=True)
        return evicted

    def pop(self, key: str) -> bool:
        self.path(key).unlink(missing_ok=True)
        return super().pop(key)


class TieredAdapterCache:
    """Hands out device-resident prepared adapters, loading them through the tiers."""

    def __init__(
        self,
        store: AdapterStore,
        prepare: Callable[[bytes, TwinRecord], PreparedAdapter],
        device: torch.device,
        budgets: Budgets,
        disk_dir: Path,
        events: CacheEvents | None = None,
    ):
        self.store = store
        self.prepare = prepare
        self.device = device
        self.pin = device.type == "cuda"
        self.events = events or NoEvents()
        self.device_tier = LruTier("device", budgets.device)
        self.host_tier = LruTier("host", budgets.host)
        self.disk_tier = DiskTier(disk_dir, budgets.disk)
        self._lock = threading.Lock()
        self._inflight: dict[str, Future] = {}
        self.loads = {source: 0 for source in SOURCES}

    # -- lookups ---------------------------------------------------------------------------

    def acquire(self, record: TwinRecord) -> tuple[PreparedAdapter, str]:
        """The twin's adapter on the device, and which tier it came from."""
        started = time.perf_counter()
        key = record.sha256
        with self._lock:
            hit = self.device_tier.get(key)
            if hit is not None:
                self._count("device", started)
                return hit, "device"
            future = self._inflight.get(key)
            leader = future is None
            if leader:
                future = self._inflight[key] = Future()
        if not leader:
            return future.result()  # single flight: wait for the leader's load
        try:
            result = self._load_below_device(record, started)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            raise
        finally:
            with self._lock:
                self._inflight.pop(key, None)

    def _load_below_device(self, record: TwinRecord, started: float) -> tuple[PreparedAdapter, str]:
        key = record.sha256
        with self._lock:
            host = self.host_tier.get(key)
        source = "host"
        if host is None:
            host, source = self._prepare_from_disk_or_store(record)
            with self._lock:
                self._evicted("host", self.host_tier.put(key, host, host.nbytes))
        on_device = host if self.device.type == "cpu" else host.to(self.device)
        with self._lock:
            self._evicted("device", self.device_tier.put(key, on_device, on_device.nbytes))
            self._count(source, started)
        return on_device, source

    def _prepare_from_disk_or_store(self, record: TwinRecord) -> tuple[PreparedAdapter, str]:
        """Read and verify the file (sha256, format, fit to the slot) before any tier keeps it."""
        key = record.sha256
        with self._lock:
            on_disk = key in self.disk_tier
        if on_disk:
            try:
                data = self.disk_tier.path(key).read_bytes()
                return self.prepare(data, record).to(torch.device("cpu"), pin=self.pin), "disk"
            except (OSError, AtelierError):  # a damaged cache file: drop it and use the store
                with self._lock:
                    self.disk_tier.pop(key)
        data = self.store.read_bytes(record.adapter_path)
        prepared = self.prepare(data, record).to(torch.device("cpu"), pin=self.pin)
        with self._lock:
            self._evicted("disk", self.disk_tier.write(key, data))
        return prepared, "store"

    # -- management ------------------------------------------------------------------------

    def prefetch(self, records: list[TwinRecord]) -> dict[str, str]:
        """Warm each twin's adapter into the device tier; returns twin id -> source or error code."""
        results = {}
        for record in records:
            try:
                results[record.id] = self.acquire(record)[1]
            except AtelierError as exc:
                results[record.id] = f"error:{exc.code}"
        return results

    def evict(self, sha256: str) -> list[str]:
        """Drop an adapter from every tier; returns the tiers that held it."""
        removed = []
        with self._lock:
            for tier in (self.device_tier, self.host_tier, self.disk_tier):
                if tier.pop(sha256):
                    removed.append(tier.name)
            self._report_sizes()
        return removed

    def in_device_tier(self, sha256: str) -> bool:
        """Whether the device tier holds the adapter now (an `acquire` would return at once)."""
        with self._lock:
            return sha256 in self.device_tier

    def tiers_of(self, sha256: str) -> list[str]:
        with self._lock:
            return [t.name for t in (self.device_tier, self.host_tier, self.disk_tier) if sha256 in t]

    def stats(self) -> dict:
        with self._lock:
            return {
                t.name: {"entries": len(t.entries), "bytes": t.used, "budget": t.budget}
                for t in (self.device_tier, self.host_tier, self.disk_tier)
            } | {"loads": dict(self.loads)}

    # -- bookkeeping (lock held) -----------------------------------------------------------

    def _count(self, source: str, started: float) -> None:
        self.loads[source] += 1
        self.events.served(source, time.perf_counter() - started)
        self._report_sizes()

    def _evicted(self, tier: str, keys: list[str]) -> None:
        for _ in keys:
            self.events.evicted(tier)

    def _report_sizes(self) -> None:
        for tier in (self.device_tier, self.host_tier, self.disk_tier):
            self.events.resident(tier.name, tier.used)
