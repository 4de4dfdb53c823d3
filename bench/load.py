"""Load: N clients for M seconds against a served Atelier; status counts, p50/p95, and the audit check.

Each client loops small generations (`POST /v1/generate`), and every `--verify-every`-th call
verifies the last image it got (`POST /v1/verify`). At the end the fleet's audit record is
read from the registry database (beside the running writers): the `generation` records with outcome `ok` must be exactly
the 200 generations the clients got, one each. The report is JSON: statuses, latency p50/p95
per route (all answers, and 200s only), requests per second, the audit check, and the machine.

    python bench/load.py --clients 4 --seconds 60                  # serves the demo itself
    python bench/load.py --clients 4 --seconds 60 --gateways 2     # ... as two gateways and one renderer
    python bench/load.py --url http://127.0.0.1:3000 --token $ATELIER_DEMO_KEY --audit-db sqlite:///var/registry.db
    python bench/load.py --url http://a:3000 --url http://b:3000 --token ... --audit-db postgresql://...  # a fleet

Requests are sent only to the given loopback URL, bounded by count of clients and seconds.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

BODY = {"twin_id": "demo-ava", "prompt": "studio photo, linen dress", "width": 256, "height": 256, "steps": 2}
TWINS = ("demo-ava", "demo-ben", "demo-cleo")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 1)


def run_load(url: str | list[str], token: str, clients: int, seconds: float, *, verify_every: int = 4,
             audit_db: str | None = None, timeout_s: float = 120.0) -> dict:
    """Drive the service and return the report (see the module docstring). With several URLs
    (gateways of one fleet), client i talks to URL i mod len(urls)."""
    urls = [url] if isinstance(url, str) else list(url)
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    statuses: Counter = Counter()
    latencies: dict[str, list[float]] = defaultdict(list)
    ok_latencies: dict[str, list[float]] = defaultdict(list)
    generated: list[str] = []
    errors: Counter = Counter()

    def client(index: int) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        last_image = None
        with httpx.Client(base_url=urls[index % len(urls)], headers=headers, timeout=timeout_s) as http:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                if last_image is not None and verify_every and n % verify_every == 0:
                    route = "/v1/verify"
                    call = lambda: http.post(route, content=last_image, headers={"content-type": "image/png"})  # noqa: E731
                else:
                    route = "/v1/generate"
                    body = {**BODY, "twin_id": TWINS[(index + n) % len(TWINS)], "seed": index * 100_000 + n}
                    call = lambda: http.post(route, json=body)  # noqa: E731
                started = time.perf_counter()
                try:
                    response = call()
                except httpx.HTTPError as exc:
                    with lock:
                        errors[type(exc).__name__] += 1
                    continue
                ms = (time.perf_counter() - started) * 1000
                with lock:
                    statuses[f"{route} {response.status_code}"] += 1
                    latencies[route].append(ms)
                    if response.status_code == 200:
                        ok_latencies[route].append(ms)
                if route == "/v1/generate" and response.status_code == 200:
                    payload = response.json()
                    with lock:
                        generated.append(payload["generation_id"])
                    last_image = base64.b64decode(payload["images"][0]["data_base64"])

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + timeout_s + 30)
    elapsed = time.monotonic() - started
    total = sum(statuses.values())
    report = {
        "clients": clients, "gateways": len(urls), "seconds": seconds, "elapsed_s": round(elapsed, 1), "requests": total,
        "requests_per_s": round(total / elapsed, 2) if elapsed else None,
        "statuses": dict(sorted(statuses.items())), "transport_errors": dict(errors),
        "server_errors": sum(n for key, n in statuses.items() if key.rsplit(" ", 1)[1].startswith("5")),
        "latency_ms": {route: {"p50": percentile(v, 0.5), "p95": percentile(v, 0.95), "n": len(v)}
                       for route, v in sorted(latencies.items())},
        "latency_ok_ms": {route: {"p50": percentile(v, 0.5), "p95": percentile(v, 0.95), "n": len(v)}
                          for route, v in sorted(ok_latencies.items())},
        "generations_ok": len(generated),
    }
    if audit_db is not None:
        report["audit"] = audit_check(audit_db, generated)
    return report


def audit_check(db_url: str, generated: list[str]) -> dict:
    """Every 200 generation has exactly one `ok` generation record in the fleet's audit record
    (the registry database at `db_url`, read beside the running writers), and no other `ok`
    record exists for this run's generations."""
    from service.registry import Database
    from service.registry.audit import AuditRecords

    wanted = set(generated)
    ok = Counter(r.get("generation_id") for r in AuditRecords(Database(db_url)).find("event", "generation")
                 if r.get("outcome") == "ok" and r.get("generation_id") in wanted)
    return {"generations_200": len(generated), "distinct": len(wanted), "ok_records": sum(ok.values()),
            "missing": sorted(wanted - set(ok))[:5], "duplicated": sorted(g for g, n in ok.items() if n > 1)[:5],
            "matches": len(generated) == len(wanted) == sum(ok.values()) and all(n == 1 for n in ok.values())}


def serve_fleet(gateways: int, db_url: str | None) -> tuple[list, list[str], str, str]:
    """Serve the demo here: `bentoml serve` (one gateway), or with `gateways` > 1 one renderer
    and that many gateways, each with a home of its own, on one registry. Returns (processes,
    gateway URLs, the demo key, the registry URL)."""
    import secrets
    import shutil

    from builds.demo import ENV_FILE, DemoAssets, build_demo, read_demo_env, setup_demo_registry
    from builds.serving import GATEWAY, RENDERER, free_port, serve, serve_one

    work = Path(tempfile.mkdtemp(prefix="atelier-load-"))
    home = work / "home"
    build_demo(home)
    bounds = {"ATELIER_WARMUP": "1", "ATELIER_MAX_IMAGE_SIDE": "256", "ATELIER_MAX_STEPS": "2"}
    if gateways <= 1 and db_url is None:
        served = serve(home, work, env=bounds)
        return [served], [served.url], read_demo_env(home / ENV_FILE)["ATELIER_DEMO_KEY"], \
            f"sqlite:///{home / 'registry.db'}"
    db_url = db_url or f"sqlite:///{work / 'fleet-registry.db'}"
    (home / ENV_FILE).unlink()
    setup_demo_registry(DemoAssets(home, home / "demo" / "pipeline", home / "adapters", home / ENV_FILE), db_url)
    env = {**bounds, "ATELIER_DB_URL": db_url, "ATELIER_INTERNAL_TOKEN": secrets.token_urlsafe(32)}
    port = free_port()
    processes = [serve_one(RENDERER, home, work / "renderer", env=env, port=port)]
    for n in range(max(1, gateways)):
        pod = work / f"gateway-{n}-home"  # a pod's own home: keys and files, no registry, no audit
        shutil.copytree(home, pod, ignore=shutil.ignore_patterns("registry.db*", "audit", "cache", "bentoml"))
        processes.append(serve_one(GATEWAY, pod, work / f"gateway-{n}", env=env,
                                   depends={RENDERER: f"http://127.0.0.1:{port}"}))
    return processes, [p.url for p in processes[1:]], read_demo_env(home / ENV_FILE)["ATELIER_DEMO_KEY"], db_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", action="append", help="a served Atelier's gateway, repeatable for a fleet "
                        "(default: serve the demo here)")
    parser.add_argument("--token", help="an API key with the generate and verify scopes")
    parser.add_argument("--audit-db", help="its registry database URL (ATELIER_DB_URL), for the audit check")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--verify-every", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--gateways", type=int, default=1,
                        help="without --url: serve the demo as this many gateways (pods with homes of their own) "
                             "and one renderer, on one registry")
    parser.add_argument("--db-url", help="without --url: the registry the served fleet shares (default: a SQLite file)")
    args = parser.parse_args(argv)
    from bench.machine import describe

    served: list = []
    if args.url is None:
        served, args.url, args.token, args.audit_db = serve_fleet(args.gateways, args.db_url)
    try:
        report = run_load(args.url, args.token, args.clients, args.seconds, verify_every=args.verify_every,
                          audit_db=args.audit_db)
    finally:
        for process in served:
            process.stop()
    report["machine"] = describe()
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if report["server_errors"] == 0 and report.get("audit", {}).get("matches", True) else 1


if __name__ == "__main__":
    sys.exit(main())
