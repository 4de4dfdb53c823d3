"""Move a compiled-pipeline directory (manifest.json + the ONNX files and engines it lists) to and from S3.

Owns: the object layout under `s3://bucket/prefix/` (`manifest.json` and every artifact at
its manifest-relative path, e.g. `unet.onnx`, `engines/unet-fp16-<digest>.plan`), the upload
order (artifacts first, the manifest last, so a reader never finds a manifest naming objects
that are not there yet) and the download rule: every artifact is checked against the
manifest's sha256 (`service.engine.artifacts.verified_file`) and a file that does not match
is deleted and refused with `ArtifactError`; the manifest itself is written into the
destination last, only once every artifact it lists is there and verified. Files already in
the destination that match their sha256 are not downloaded again.

Credentials come from the standard AWS chain (`service.s3client.make_client`), never from
arguments. `download_artifacts` is what the service calls at start-up. Must never build or
export anything, or log a secret.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from service.config import ConfigError
from service.engine.artifacts import MANIFEST, Artifact, ArtifactError, Manifest, read_manifest, sha256_file, verified_file
from service.s3client import make_client, public_endpoint

READ_TIMEOUT_S = 60.0  # per socket read, not per object: engines are gigabytes


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket[/prefix]` -> (bucket, prefix without surrounding slashes)."""
    if not isinstance(url, str) or not url.startswith("s3://") or len(url) <= 5 or url[5:].startswith("/"):
        raise ConfigError(f"an S3 location looks like 's3://bucket[/prefix]', got {url!r}")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    return bucket, prefix.strip("/")


def object_key(prefix: str, file: str) -> str:
    return f"{prefix}/{file}" if prefix else file


def _where(bucket: str, key: str, endpoint_url: str | None) -> str:
    at = public_endpoint(endpoint_url)
    return f"s3://{bucket}/{key}" + (f" at {at}" if at else "")


def _inside(directory: Path, file: str) -> Path:
    """`directory/file`, refusing a manifest entry that points outside `directory`."""
    path = (Path(directory) / file).resolve()
    if Path(directory).resolve() not in path.parents:
        raise ArtifactError(f"the manifest names a file outside its directory: {file!r}")
    return path


def _s3_errors():
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def upload_artifacts(directory: Path, url: str, endpoint_url: str | None = None, region: str | None = None,
                     client=None, progress: bool = False) -> Manifest:
    """Upload `directory`'s manifest and every artifact it lists to `url`, each verified first."""
    from tqdm import tqdm

    directory = Path(directory)
    bucket, prefix = parse_s3_url(url)
    manifest = read_manifest(directory)
    files = [verified_file(artifact, directory) for artifact in manifest.artifacts]  # never upload a corrupt file
    client = client or make_client(endpoint_url, region, READ_TIMEOUT_S)
    bar = tqdm(total=len(files) + 1, desc="upload", unit="file", disable=not progress)
    try:
        for artifact, path in zip(manifest.artifacts, files):
            key = object_key(prefix, artifact.file)
            bar.set_postfix_str(artifact.file)
            try:
                client.upload_file(str(path), bucket, key)
            except _s3_errors() as exc:
                raise ArtifactError(f"cannot upload {path} to {_where(bucket, key, endpoint_url)}: {exc}") from None
            bar.update()
        key = object_key(prefix, MANIFEST)
        try:
            client.upload_file(str(directory / MANIFEST), bucket, key)
        except _s3_errors() as exc:
            raise ArtifactError(f"cannot upload the manifest to {_where(bucket, key, endpoint_url)}: {exc}") from None
        bar.update()
    finally:
        bar.close()
    return manifest


def download_artifacts(url: str, dest: Path, endpoint_url: str | None = None, region: str | None = None,
                       client=None, progress: bool = False) -> Manifest:
    """Download the compiled pipeline at `url` into `dest` and return its manifest.

    Every artifact is verified against the manifest's sha256; one that does not match is
    deleted and the download fails with `ArtifactError` (as it does for a missing object or
    an unreachable endpoint). `dest/manifest.json` is written only after every artifact
    is in place and verified, so a directory with a manifest is always complete.
    """
    from tqdm import tqdm

    dest = Path(dest)
    bucket, prefix = parse_s3_url(url)
    dest.mkdir(parents=True, exist_ok=True)
    client = client or make_client(endpoint_url, region, READ_TIMEOUT_S)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".manifest-") as staging:
        key = object_key(prefix, MANIFEST)
        try:
            client.download_file(bucket, key, str(Path(staging) / MANIFEST))
        except _s3_errors() as exc:
            raise ArtifactError(f"no compiled-pipeline manifest at {_where(bucket, key, endpoint_url)}: {exc}") from None
        manifest = read_manifest(Path(staging))
        raw = (Path(staging) / MANIFEST).read_bytes()
    bar = tqdm(total=len(manifest.artifacts), desc="download", unit="file", disable=not progress)
    try:
        for artifact in manifest.artifacts:
            bar.set_postfix_str(artifact.file)
            _download_one(client, bucket, prefix, artifact, dest, endpoint_url)
            bar.update()
    finally:
        bar.close()
    staged = dest / f".{MANIFEST}.part"
    staged.write_bytes(raw)
    os.replace(staged, dest / MANIFEST)
    return manifest


def _download_one(client, bucket: str, prefix: str, artifact: Artifact, dest: Path, endpoint_url: str | None) -> Path:
    final = _inside(dest, artifact.file)  # before anything is written
    if final.is_file() and sha256_file(final) == artifact.sha256:
        return final  # already here and intact
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(f".{final.name}.part")
    key = object_key(prefix, artifact.file)
    try:
        client.download_file(bucket, key, str(part))
    except _s3_errors() as exc:
        part.unlink(missing_ok=True)
        raise ArtifactError(f"{artifact.component}: cannot download {_where(bucket, key, endpoint_url)}: {exc}") from None
    os.replace(part, final)
    try:
        return verified_file(artifact, dest)
    except ArtifactError as exc:
        final.unlink(missing_ok=True)
        raise ArtifactError(f"refused {_where(bucket, key, endpoint_url)} and deleted the copy: {exc}") from None


def write_weights_manifest(pipeline_dir: Path) -> Manifest:
    """List every file of a diffusers pipeline directory (kind `weights`, with its sha256) in
    `pipeline_dir/manifest.json`, so `upload_artifacts` can ship the base model and a
    replica can fetch and verify it at start-up (ATELIER_BASE_MODEL_S3)."""
    from datetime import datetime, timezone

    from service.engine.artifacts import write_manifest
    from service.engine.loading import check_pipeline_dir, fingerprint_pipeline

    pipeline_dir = Path(pipeline_dir).resolve()
    check_pipeline_dir(pipeline_dir)  # a diffusers pipeline, safetensors only
    (pipeline_dir / MANIFEST).unlink(missing_ok=True)
    files = sorted(p for p in pipeline_dir.rglob("*") if p.is_file())
    artifacts = tuple(
        Artifact(component=p.relative_to(pipeline_dir).parts[0], kind="weights", file=p.relative_to(pipeline_dir).as_posix(),
                 sha256=sha256_file(p), bytes=p.stat().st_size)
        for p in files
    )
    manifest = Manifest(fingerprint_pipeline(pipeline_dir), datetime.now(timezone.utc).isoformat(), artifacts)
    write_manifest(pipeline_dir, manifest)
    return manifest
