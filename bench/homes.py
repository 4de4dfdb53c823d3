"""Demo homes for benches: the demo build plus extra twins of their own.

Owns: building a throwaway ATELIER_HOME with the demo pipeline and `count` more twins (random
LoRAs from fixed seeds, registered in its registry). Must never touch the repository's own
`var/` or download anything.
"""

from __future__ import annotations

from pathlib import Path

from builds.demo import build_demo, build_twin_adapter, sha256_file
from service.config import Settings
from service.registry import open_registry


def home_with_twins(root: Path, prefix: str, count: int, first_seed: int) -> Path:
    """`root/home`: the demo, plus twins `{prefix}-0` .. `{prefix}-{count-1}` (rank 4)."""
    home = root / "home"
    build_demo(home)
    registry = open_registry(Settings.from_env({"ATELIER_HOME": str(home)}).db_url)
    for i in range(count):
        adapter = home / "adapters" / f"{prefix}-{i}.safetensors"
        build_twin_adapter(home / "demo" / "pipeline", first_seed + i, adapter)
        registry.put_twin(f"{prefix}-{i}", display_name=f"{prefix.title()} {i}", adapter_key=adapter.name,
                          adapter_sha256=sha256_file(adapter), rank=4)
    return home
