"""The tiered adapter cache: LRU order and byte budgets per tier, single flight, verification."""

import hashlib
import threading
import time

import pytest
import torch

from service.errors import AdapterUnavailable
from service.twins.cache import Budgets, DiskTier, LruTier, TieredAdapterCache
from service.twins.records import TwinRecord
from service.twins.slot import PreparedAdapter


def test_lru_tier_evicts_least_recent_first_and_counts_bytes():
    tier = LruTier("host", budget=100)
    assert tier.put("a", "A", 40) == [] and tier.put("b", "B", 40) == []
    assert tier.get("a") == "A"  # a is now the most recent
    assert tier.put("c", "C", 40) == ["b"]
    assert list(tier.entries) == ["a", "c"] and tier.used == 80
    assert tier.put("d", "D", 100) == ["a", "c"] and tier.used == 100
    assert tier.put("huge", "H", 101) == [] and "huge" not in tier and tier.used == 100
    assert tier.pop("d") and tier.used == 0 and not tier.pop("d")


def test_lru_tier_reinsert_does_not_double_count():
    tier = LruTier("device", budget=100)
    tier.put("a", "A", 60)
    tier.put("a", "A2", 60)
    assert tier.used == 60 and tier.get("a") == "A2"


def test_disk_tier_deletes_evicted_files_and_survives_restart(tmp_path):
    disk = DiskTier(tmp_path, budget=10)
    disk.write("one", b"11111")
    time.sleep(0.01)
    disk.write("two", b"22222")
    assert disk.write("three", b"333") == ["one"]
    assert not (tmp_path / "one.safetensors").exists() and (tmp_path / "three.safetensors").exists()
    reopened = DiskTier(tmp_path, budget=10)
    assert set(reopened.entries) == {"two", "three"} and reopened.used == 8


class FakeStore:
    """A store that counts reads and can be slowed down, to observe the cache from outside."""

    def __init__(self, files: dict[str, bytes], delay: float = 0.0):
        self.files, self.delay, self.reads = files, delay, []
        self.lock = threading.Lock()

    def read_bytes(self, key: str) -> bytes:
        with self.lock:
            self.reads.append(key)
        time.sleep(self.delay)
        if key not in self.files:
            raise AdapterUnavailable(f"adapter file {key!r} is missing from the store")
        return self.files[key]


def run_threads(worker, count: int) -> None:
    threads = [threading.Thread(target=worker) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def make_cache(tmp_path, files, budgets=Budgets(200, 400, 10_000), delay=0.0, size=100):
    store = FakeStore(files, delay)

    def prepare(data: bytes, record: TwinRecord) -> PreparedAdapter:
        if hashlib.sha256(data).hexdigest() != record.sha256:
            raise AdapterUnavailable("sha256 mismatch")
        half = torch.zeros(size // 8, dtype=torch.float32)  # 2 tensors x size/2 bytes
        return PreparedAdapter(record.sha256, 4, {"layer": (half, half.clone())}, size)

    cache = TieredAdapterCache(store, prepare, torch.device("cpu"), budgets, tmp_path / "disk")
    return cache, store


def twin(name: str, data: bytes) -> TwinRecord:
    return TwinRecord(name, name, f"{name}.safetensors", hashlib.sha256(data).hexdigest())


def test_tiers_fill_from_the_store_and_serve_from_the_top(tmp_path):
    files = {f"t{i}.safetensors": f"adapter-{i}".encode() for i in range(3)}
    cache, store = make_cache(tmp_path, files)
    t0 = twin("t0", files["t0.safetensors"])
    assert cache.acquire(t0)[1] == "store"
    assert cache.tiers_of(t0.sha256) == ["device", "host", "disk"]
    assert cache.acquire(t0)[1] == "device"
    assert store.reads == ["t0.safetensors"]


def test_device_budget_evicts_lru_and_lower_tiers_serve_it_back(tmp_path):
    files = {f"t{i}.safetensors": f"adapter-{i}".encode() for i in range(5)}
    cache, store = make_cache(tmp_path, files, budgets=Budgets(device=200, host=300, disk=10_000))
    twins = [twin(f"t{i}", files[f"t{i}.safetensors"]) for i in range(5)]
    for t in twins[:3]:
        cache.acquire(t)  # device holds 2 (200 B), host holds 3 (300 B)
    assert cache.tiers_of(twins[0].sha256) == ["host", "disk"]
    assert cache.stats()["device"]["bytes"] == 200 and cache.stats()["host"]["bytes"] == 300
    assert cache.acquire(twins[0])[1] == "host"
    cache.acquire(twins[3])  # host evicts its LRU (t1)
    assert cache.tiers_of(twins[1].sha256) == ["disk"]
    assert cache.acquire(twins[1])[1] == "disk"
    assert len(store.reads) == 4  # t0..t3 once each: everything else came from a tier


def test_single_flight_for_a_cold_adapter(tmp_path):
    files = {"slow.safetensors": b"slow adapter"}
    cache, store = make_cache(tmp_path, files, delay=0.3)
    record = twin("slow", files["slow.safetensors"])
    results, errors = [], []

    def worker():
        try:
            results.append(cache.acquire(record)[0])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    run_threads(worker, 8)
    assert not errors and len(results) == 8
    assert store.reads == ["slow.safetensors"]
    assert all(r is results[0] for r in results)


def test_single_flight_shares_a_failure_and_retries_later(tmp_path):
    cache, store = make_cache(tmp_path, {}, delay=0.2)
    record = twin("gone", b"whatever")
    errors = []

    def worker():
        try:
            cache.acquire(record)
        except AdapterUnavailable as exc:
            errors.append(exc)

    run_threads(worker, 4)
    assert len(errors) == 4 and len(store.reads) == 1
    store.files["gone.safetensors"] = b"whatever"
    assert cache.acquire(record)[1] == "store"  # a failure is not cached


def test_mismatching_file_enters_no_tier(tmp_path):
    files = {"bad.safetensors": b"tampered"}
    cache, _ = make_cache(tmp_path, files)
    record = twin("bad", b"original")
    with pytest.raises(AdapterUnavailable):
        cache.acquire(record)
    assert cache.tiers_of(record.sha256) == []
    assert not list((tmp_path / "disk").glob("*.safetensors"))


def test_damaged_disk_copy_is_dropped_and_refetched(tmp_path):
    files = {"t.safetensors": b"good bytes"}
    cache, store = make_cache(tmp_path, files, budgets=Budgets(device=0, host=0, disk=10_000))
    record = twin("t", files["t.safetensors"])
    cache.acquire(record)
    (tmp_path / "disk" / f"{record.sha256}.safetensors").write_bytes(b"bit rot")
    assert cache.acquire(record)[1] == "store"
    assert (tmp_path / "disk" / f"{record.sha256}.safetensors").read_bytes() == b"good bytes"


def test_evict_removes_every_tier(tmp_path):
    files = {"t.safetensors": b"bytes"}
    cache, _ = make_cache(tmp_path, files)
    record = twin("t", files["t.safetensors"])
    cache.acquire(record)
    assert cache.evict(record.sha256) == ["device", "host", "disk"]
    assert cache.tiers_of(record.sha256) == [] and cache.stats()["host"]["bytes"] == 0


def test_prefetch_reports_per_twin(tmp_path):
    files = {"a.safetensors": b"a"}
    cache, _ = make_cache(tmp_path, files)
    assert cache.prefetch([twin("a", b"a"), twin("b", b"b")]) == {"a": "store", "b": "error:adapter_unavailable"}
