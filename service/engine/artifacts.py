"""Compiled-pipeline artifacts: the engine cache key, the manifest, and checking both.

Owns: what identifies a built engine (pipeline hash, component, GPU name and compute
capability, TensorRT version, precision, shape profile), the `manifest.json` that
`builds/compile.py` writes next to the ONNX files and engines it built, reading it back,
refusing an engine whose key does not match this machine (`EngineMismatch`, with the
differing fields named), and verifying each artifact's sha256 before it is used. Must never
build, export or run anything (that is `builds/compile.py` and the backends), and never
import tensorrt: the machine facts are passed in.

Manifest format (JSON, version 1):
    {"version": 1, "pipeline_hash": "...", "created_at": "...",
     "artifacts": [{"component": "unet", "kind": "onnx" | "engine", "file": "unet.onnx",
                    "sha256": "...", "bytes": 123, "key": {...EngineKey fields...} | null,
                    "max_abs_error": 1e-4 | null, "refittable": true | null}]}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from service.errors import AtelierError

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


class ArtifactError(AtelierError):
    """An artifact is missing, corrupt (sha256) or the manifest unreadable."""

    status = 503
    code = "artifact_unavailable"


class EngineMismatch(ArtifactError):
    """An engine was built for another GPU, TensorRT version, precision, profile or pipeline."""

    code = "engine_mismatch"


@dataclass(frozen=True)
class EngineKey:
    pipeline_hash: str
    component: str  # text_encoder | text_encoder_2 | unet | vae_decoder
    gpu_name: str
    compute_capability: str  # "9.0"
    trt_version: str
    precision: str  # fp16 | bf16 | fp32
    profile: str  # e.g. "b1-4_h512-1024_w512-1024"

    def cache_name(self) -> str:
        """A file-system-safe, collision-resistant name for the engine cache."""
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.component}-{self.precision}-{digest}.plan"

    def mismatches(self, other: "EngineKey") -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


@dataclass(frozen=True)
class Artifact:
    component: str
    kind: str  # onnx | engine
    file: str
    sha256: str
    bytes: int
    key: EngineKey | None = None
    max_abs_error: float | None = None
    refittable: bool | None = None


@dataclass(frozen=True)
class Manifest:
    pipeline_hash: str
    created_at: str
    artifacts: tuple[Artifact, ...]

    def engines(self) -> dict[str, Artifact]:
        return {a.component: a for a in self.artifacts if a.kind == "engine"}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    body = {"version": MANIFEST_VERSION, "pipeline_hash": manifest.pipeline_hash, "created_at": manifest.created_at,
            "artifacts": [{**asdict(a), "key": asdict(a.key) if a.key else None} for a in manifest.artifacts]}
    path = Path(directory) / MANIFEST
    path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    return path


def read_manifest(directory: Path) -> Manifest:
    path = Path(directory) / MANIFEST
    try:
        body = json.loads(path.read_text())
        if body.get("version") != MANIFEST_VERSION:
            raise ArtifactError(f"{path} has manifest version {body.get('version')!r}; this service reads {MANIFEST_VERSION}")
        artifacts = tuple(
            Artifact(**{**a, "key": EngineKey(**a["key"]) if a.get("key") else None}) for a in body["artifacts"]
        )
        return Manifest(body["pipeline_hash"], body["created_at"], artifacts)
    except FileNotFoundError:
        raise ArtifactError(f"no compiled-pipeline manifest at {path}; run builds/compile.py") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"the manifest {path} is unreadable: {exc}") from None


def check_engine(artifact: Artifact, expected: EngineKey, directory: Path) -> Path:
    """The engine file, when its key matches this machine and its bytes match the manifest."""
    if artifact.key is None:
        raise ArtifactError(f"the manifest entry for {artifact.component} has no engine key")
    differing = artifact.key.mismatches(expected)
    if differing:
        detail = ", ".join(f"{name}: built {getattr(artifact.key, name)!r}, here {getattr(expected, name)!r}" for name in differing)
        raise EngineMismatch(f"the {artifact.component} engine does not match this machine ({detail})")
    return verified_file(artifact, directory)


def verified_file(artifact: Artifact, directory: Path) -> Path:
    path = (Path(directory) / artifact.file).resolve()
    if Path(directory).resolve() not in path.parents:
        raise ArtifactError(f"the manifest names a file outside its directory: {artifact.file!r}")
    if not path.is_file():
        raise ArtifactError(f"{artifact.component}: {path} is missing")
    if sha256_file(path) != artifact.sha256:
        raise ArtifactError(f"{artifact.component}: {path} does not match its sha256 in the manifest")
    return path
