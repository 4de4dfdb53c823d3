"""`atelier twins check FILE`: whether an adapter file would be accepted, and why not.

Owns: reading one local safetensors file (up to the upload limit) and running the same checks
`POST /v1/admin/twins` runs before anything is stored: the header-only layout check against
this deployment's adapter slot (rank, target layers, dtypes, values, alphas) and the likeness
fingerprint (which refuses a layer named twice). Prints one JSON object; exit 0 when the
file would be accepted, 1 when not (the same error code and message the API would answer).
Must never write anything, touch the registry or the adapter store, or unpickle a file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from service.commands.common import UsageError, load_settings
from service.errors import AtelierError, PayloadTooLarge, UnsafeWeights


def cmd_twins_check(args: argparse.Namespace) -> int:
    from service.twins.likeness import fingerprint_adapter
    from service.twins.validate import check_adapter_file

    settings = load_settings()
    path = Path(args.file)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    answer: dict = {"file": str(path), "bytes": size}
    try:
        if path.suffix.lower() in (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"):
            raise UnsafeWeights(f"{path.name} is a pickle format; adapters are safetensors only", field="adapter")
        if size > settings.max_upload_bytes:
            raise PayloadTooLarge(f"the file is {size} bytes; this deployment takes at most "
                                  f"{settings.max_upload_bytes} (ATELIER_MAX_UPLOAD_BYTES)", field="adapter")
        data = path.read_bytes()
        layout = check_adapter_file(data, max_rank=settings.lora_slot_rank, targets=settings.lora_targets)
        fingerprint = fingerprint_adapter(data)
    except AtelierError as exc:
        error = {"code": exc.code, "message": exc.message}
        if exc.field:
            error["field"] = exc.field
        print(json.dumps({**answer, "accepted": False, "error": error}, indent=2))
        return 1
    print(json.dumps({**answer, "accepted": True, "sha256": hashlib.sha256(data).hexdigest(), "rank": layout.rank,
                      "slot_rank": settings.lora_slot_rank, "layers": len(layout.layers),
                      "fingerprinted_layers": fingerprint.layers,
                      "note": "the layers' sizes are checked against the base model when a renderer first loads "
                              "the twin; a registration is also refused (409 likeness_in_use) when the adapter is "
                              "a copy of another person's twin"}, indent=2))
    return 0

