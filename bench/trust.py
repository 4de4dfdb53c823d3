"""Trust under attack, measured against a served Atelier (docs/RELIABILITY.md records the figures).

1. Audit flood: N keyless requests (default 10,000) from one loopback source while a keyed
   client on another source generates; the audit log's growth in bytes (first refusals at
   once, then the per-source, per-minute summary), and the keyed client's statuses and p50.
2. Verify chunk bomb: a PNG of 1.7 million tiny text chunks (about 25 MB) sent to /v1/verify
   with a verify key; wall time of the answer, and of `verify_image` alone in this process.
3. Refusal timing: median latency of `POST /v1/generate` for an unknown twin, another
   tenant's twin, a revoked twin this tenant was never named on (all `consent_missing`), and a
   revoked twin it was named on (`revoked`).

    python bench/trust.py [--flood 10000] [--timing 200] [--json out.json]

Traffic goes only to the loopback server this script starts, bounded in count.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import struct
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

SMALL = {"width": 256, "height": 256, "steps": 2}


def chunk_bomb_png(chunks: int = 1_700_000) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(buffer, format="PNG")
    data = buffer.getvalue()
    payload = b"k\x00v"
    text = struct.pack(">I", len(payload)) + b"tEXt" + payload + struct.pack(">I", zlib.crc32(b"tEXt" + payload))
    return data[:33] + text * chunks + data[33:]


def audit_store(home: Path):
    """The served instance's audit record: the registry database under `home`."""
    from service.config import Settings
    from service.registry import Database
    from service.registry.audit import AuditRecords

    return AuditRecords(Database(Settings.from_env({"ATELIER_HOME": str(home)}).db_url))


def audit_bytes(home: Path) -> int:
    """Bytes of every committed record (a line each in the archive, newline included)."""
    store = audit_store(home)
    return store.total_bytes() + store.count()


def source_bytes(home: Path, client_ip: str) -> tuple[int, int]:
    """(bytes, records) of the audit records of requests from `client_ip`."""
    records = audit_store(home).find("client_ip", client_ip)
    from service.audit.record import canonical_json

    return sum(len(canonical_json(r)) + 1 for r in records), len(records)


def median_ms(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[len(ordered) // 2], 2)


def flood(url: str, token: str, home: Path, count: int) -> dict:
    before = audit_bytes(home)
    keyed: list[tuple[int, float]] = []
    done = threading.Event()

    def keyed_client() -> None:
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=url, transport=transport, timeout=120,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            n = 0
            while not done.is_set():
                n += 1
                started = time.perf_counter()
                r = http.post("/v1/generate", json={"twin_id": "demo-ava", "prompt": "keyed during flood", "seed": n, **SMALL})
                keyed.append((r.status_code, (time.perf_counter() - started) * 1000))

    baseline = []
    with httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {token}"},
                      transport=httpx.HTTPTransport(local_address="127.0.0.2")) as http:
        for n in range(10):
            started = time.perf_counter()
            http.post("/v1/generate", json={"twin_id": "demo-ava", "prompt": "keyed baseline", "seed": n, **SMALL})
            baseline.append((time.perf_counter() - started) * 1000)
    thread = threading.Thread(target=keyed_client, daemon=True)
    thread.start()
    statuses: dict[int, int] = {}
    body = {"twin_id": "demo-ava", "prompt": "p" * 1800, "negative_prompt": "n" * 1800}
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=30, transport=httpx.HTTPTransport(local_address="127.0.0.3")) as attacker:
        for i in range(count):
            route = ("/v1/generate", "/v1/jobs/submit", "/v1/verify", "/v1/nowhere")[i % 4]
            r = attacker.post(route, json=body)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    flood_s = time.perf_counter() - started
    done.set()
    thread.join(180)
    immediate = audit_bytes(home) - before
    attacker_now = source_bytes(home, "127.0.0.3")
    wait = 60 - time.time() % 60 + 12  # the minute's summary is written by the next flush after it ends
    time.sleep(wait)
    after = audit_bytes(home) - before
    attacker_bytes, attacker_records = source_bytes(home, "127.0.0.3")
    return {"keyless_requests": count, "seconds": round(flood_s, 1), "statuses": statuses,
            "flood_audit_bytes_at_once": attacker_now[0], "flood_audit_bytes": attacker_bytes,
            "flood_audit_records": attacker_records,
            "audit_growth_bytes_all": after, "audit_growth_bytes_all_at_once": immediate,
            "keyed_during_flood": {"requests": len(keyed), "statuses": sorted({s for s, _ in keyed}),
                                   "p50_ms": median_ms([ms for _, ms in keyed]) if keyed else None},
            "keyed_baseline_p50_ms": median_ms(baseline)}


def verify_bomb(url: str, token: str, max_pixels: int) -> dict:
    from service.provenance.verify import verify_image

    data = chunk_bomb_png()
    started = time.perf_counter()
    r = httpx.post(url + "/v1/verify", content=data, timeout=300,
                   headers={"Authorization": f"Bearer {token}", "content-type": "image/png"})
    served_s = time.perf_counter() - started
    started = time.perf_counter()
    try:
        verify_image(data, max_pixels, None)
        local = "answered"
    except Exception as exc:  # noqa: BLE001 - the refusal is the expected outcome
        local = getattr(exc, "code", type(exc).__name__)
    local_s = time.perf_counter() - started
    return {"bytes": len(data), "chunks": 1_700_000, "status": r.status_code, "code": r.json().get("error", {}).get("code"),
            "served_s": round(served_s, 3), "verify_image_s": round(local_s, 4), "verify_image": local}


def refusal_timing(url: str, token: str, home: Path, count: int) -> dict:
    from service.config import Settings
    from service.registry import open_registry
    from service.tenancy.manage import record_consent

    registry = open_registry(Settings.from_env({"ATELIER_HOME": str(home)}).db_url)
    registry.create_tenant("rival", "Rival")
    for twin_id, sha, tenant in [("rival-only", "f", "rival"), ("rival-gone", "e", "rival"), ("demo-gone", "d", "demo")]:
        registry.put_twin(twin_id, display_name=twin_id, adapter_key=f"x/{twin_id}.safetensors", adapter_sha256=sha * 64, rank=4)
        record_consent(registry, twin_id, tenants=[tenant], uses=["ecommerce"], recorded_by="bench")
    registry.revoke_twin("rival-gone")
    registry.revoke_twin("demo-gone")
    _, token = registry.create_api_key("demo", ["generate"], name="timing", requests_per_minute=100_000)
    registry.engine.dispose()
    time.sleep(1)
    cases = {"unknown": "no-such-twin", "other_tenant": "rival-only", "revoked_never_named": "rival-gone",
             "revoked_named": "demo-gone"}
    out = {}
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:
        for _ in range(20):  # warm up
            http.post("/v1/generate", json={"twin_id": "no-such-twin", "prompt": "x", **SMALL})
        times: dict[str, list[float]] = {name: [] for name in cases}
        codes: dict[str, set] = {name: set() for name in cases}
        for _ in range(count):
            for name, twin_id in cases.items():  # interleaved: drift hits every case alike
                started = time.perf_counter()
                r = http.post("/v1/generate", json={"twin_id": twin_id, "prompt": "timing", **SMALL})
                times[name].append((time.perf_counter() - started) * 1000)
                codes[name].add(r.json()["error"]["code"])
        for name in cases:
            out[name] = {"median_ms": median_ms(times[name]), "codes": sorted(codes[name])}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flood", type=int, default=10_000)
    parser.add_argument("--timing", type=int, default=200)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", choices=("flood", "verify", "timing"))
    args = parser.parse_args(argv)
    from bench.machine import describe
    from builds.demo import ENV_FILE, build_demo, read_demo_env
    from builds.serving import serve

    work = Path(tempfile.mkdtemp(prefix="atelier-trust-"))
    home = work / "home"
    build_demo(home)
    keys = read_demo_env(home / ENV_FILE)
    served = serve(home, work, env={"ATELIER_WARMUP": "1"})
    try:
        report = {}
        if args.only in (None, "flood"):
            report["flood"] = flood(served.url, keys["ATELIER_DEMO_KEY"], home, args.flood)
        if args.only in (None, "verify"):
            report["verify_chunk_bomb"] = verify_bomb(served.url, keys["ATELIER_DEMO_KEY"], 16 * 1024**2)
        if args.only in (None, "timing"):
            report["refusal_timing"] = refusal_timing(served.url, keys["ATELIER_DEMO_KEY"], home, args.timing)
    finally:
        served.stop()
        shutil.rmtree(work, ignore_errors=True)
    report["machine"] = describe()
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
