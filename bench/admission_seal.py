"""What the admission seal costs per render item: the gateway's seal and the renderer's check.

Items: a text-only request; one with four garments, pose keypoints and an edit (the largest
canonical request the API allows, bar prompt length); and that one with 2000-character
prompts. For each, the median over many runs of: `seal` (the gateway, per item), `verify` of
the item as the renderer parses it off the wire (per item), and both together; plus the
bearer check per call. Runs of `--batch` items are timed together and divided, so timer
resolution does not count. CPU only, standard library HMAC-SHA256.

Prints one JSON line and a short table.

    python bench/admission_seal.py [--runs 2000] [--batch 16]
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe, median  # noqa: E402
from service.admission_seal import InternalCredential  # noqa: E402
from service.rendering import RenderBatch, RenderEdit, RenderItem  # noqa: E402
from service.schemas import GenerateRequest  # noqa: E402

TTL_S = 780.0  # ATELIER_RENDER_WAIT_S (120) + the render call's timeout (660), as the gateway seals


def items(batch: int) -> dict[str, list[RenderItem]]:
    def asset() -> str:
        return secrets.token_hex(32)

    text = {"twin_id": "demo-ava", "prompt": "studio photo, linen summer dress", "width": 1024, "height": 1024}
    full = {**text, "negative_prompt": "blurry", "garments": [{"asset_id": asset(), "category": "tops", "strength": 0.7}
                                                              for _ in range(4)],
            "pose": {"keypoints": [[0.1 + i / 40, 0.2 + i / 50] for i in range(17)] + [None], "scale": 0.8}}
    long = {**full, "prompt": "linen dress, " * 153 + "studio", "negative_prompt": "blurry, " * 249 + "dark"}

    def item(body: dict, edit: bool) -> RenderItem:
        return RenderItem(generation_id=uuid.uuid4().hex, seed=secrets.randbelow(2**31), tenant_id="demo",
                          request=GenerateRequest.model_validate(body),
                          edit=RenderEdit(source_asset_id=asset(), mask_asset_id=asset()) if edit else None)

    return {"text only": [item(text, False) for _ in range(batch)],
            "4 garments, pose, edit": [item(full, True) for _ in range(batch)],
            "same, 2000-char prompts": [item(long, True) for _ in range(batch)]}


def per_item_us(fn, runs: int, batch: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        timings.append((time.perf_counter() - started) / batch * 1e6)
    return round(median(timings), 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args(argv)
    credential = InternalCredential(secrets.token_urlsafe(32))
    header = credential.authorization()
    results = {}
    for name, group in items(args.batch).items():
        sealed = [credential.sealed(i, ttl_s=TTL_S) for i in group]
        wire = RenderBatch.model_validate_json(RenderBatch(items=sealed).model_dump_json()).items  # as the renderer reads them

        def seal_all():
            for i in group:
                credential.sealed(i, ttl_s=TTL_S)

        def verify_all():
            credential.verify_all(wire)

        def both():
            credential.verify_all([credential.sealed(i, ttl_s=TTL_S) for i in group])

        results[name] = {"seal_us": per_item_us(seal_all, args.runs, args.batch),
                         "verify_us": per_item_us(verify_all, args.runs, args.batch),
                         "seal_and_verify_us": per_item_us(both, args.runs, args.batch),
                         "request_json_bytes": len(group[0].request.model_dump_json())}
    bearer_us = per_item_us(lambda: [credential.accepts(header) for _ in range(args.batch)], args.runs, args.batch)
    print(json.dumps({"bench": "admission_seal", "runs": args.runs, "batch": args.batch, "items": results,
                      "bearer_check_us": bearer_us, "machine": describe()}))
    print(f"{'item':<26} {'seal':>9} {'verify':>9} {'both':>9}  (median per item, µs)")
    for name, row in results.items():
        print(f"{name:<26} {row['seal_us']:>9} {row['verify_us']:>9} {row['seal_and_verify_us']:>9}")
    print(f"bearer check per call: {bearer_us} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
