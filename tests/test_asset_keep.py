"""A delivered generation kept as an edit source: what it writes, on a directory and on S3.

`ConditioningInputs.keep` runs on every answered generation, after its audit record: on S3 its
four objects go out as concurrent PUTs with no existence check first (`BlobStore.put_many`),
so the request waits one round trip, not five (`bench/keep_output.py`). Against the test
suite's real S3 server (SeaweedFS, tests/s3server.py).
"""

from __future__ import annotations

import hashlib
import secrets
import socket
import threading
import uuid

import pytest

from service.assets import AssetService
from service.assets.inputs import ConditioningInputs
from service.assets.store import AssetNotFound, AssetStore, LocalBlobs, S3Blobs
from service.errors import AdapterUnavailable
from service.rendering import GeneratedImage, GenerationResult
from service.tenancy import Principal
from tests.test_audit_shipper import s3_env  # noqa: F401 - the server's credentials in AWS_* variables

PRINCIPAL = Principal("key", "acme", frozenset({"generate"}), 60, 4, None)


def delivered(kib: int = 64) -> GenerationResult:
    data = secrets.token_bytes(kib * 1024)
    image = GeneratedImage(index=0, format="png", width=256, height=256, seed=7, data=data,
                           sha256=hashlib.sha256(data).hexdigest(), watermark_id=secrets.token_hex(8))
    return GenerationResult(uuid.uuid4().hex, "ava", 7, [image])


def inputs_over(blobs) -> ConditioningInputs:
    return ConditioningInputs(AssetService(AssetStore(blobs), max_bytes=1 << 20, max_pixels=2048 * 2048))


@pytest.fixture(params=["local", "s3"])
def blobs(request, tmp_path):
    if request.param == "local":
        return LocalBlobs(tmp_path / "assets")
    s3_server = request.getfixturevalue("s3_env")
    return S3Blobs(f"s3://{s3_server.bucket}/keep-{uuid.uuid4().hex[:8]}", s3_server.endpoint_url, s3_server.region)


def test_a_kept_generation_reads_back_as_this_tenants_edit_source(blobs):
    inputs = inputs_over(blobs)
    result = delivered()
    inputs.keep(PRINCIPAL, result)
    image = result.images[0]
    asset_id = inputs.sources.kept_asset("acme", result.generation_id)
    assert asset_id == image.sha256
    info, data = inputs.assets.store.read("acme", asset_id)  # the bytes, sha256 checked, and their record
    assert data == image.data and (info.kind, info.width, info.bytes) == ("source", 256, len(image.data))
    with pytest.raises(AssetNotFound):  # another tenant's view: the generation is not there
        inputs.sources.kept_asset("globex", result.generation_id)


def test_on_s3_a_keep_is_four_concurrent_puts_and_no_read(s3_env):  # noqa: F811
    s3_server = s3_env
    blobs = S3Blobs(f"s3://{s3_server.bucket}/keep-{uuid.uuid4().hex[:8]}", s3_server.endpoint_url, s3_server.region)
    inputs = inputs_over(blobs)
    inputs.keep(PRINCIPAL, delivered())  # the writers' pool exists from here on
    calls: list[tuple[str, str]] = []
    lock = threading.Lock()

    def seen(model, **_):
        with lock:
            calls.append((model.name, threading.current_thread().name))

    blobs.client.meta.events.register("before-call.s3", seen)
    inputs.keep(PRINCIPAL, delivered())
    assert sorted(name for name, _ in calls) == ["PutObject"] * 4, calls  # no HeadObject/GetObject first
    assert len({thread for _, thread in calls}) > 1, calls  # sent from the pool's threads, not one after another


def test_a_failing_store_fails_the_whole_batch_as_asset_store_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    blobs = S3Blobs("s3://nowhere/assets", closed, "us-east-1")
    with pytest.raises(AdapterUnavailable) as refused:
        blobs.put_many([(f"k{i}", b"x") for i in range(4)], durable=False)
    assert refused.value.code == "asset_store_unavailable"


def test_edit_sources_must_live_in_the_asset_store_they_name(tmp_path):
    from service.assets.edit_source import EditSources

    assets = AssetService(AssetStore(LocalBlobs(tmp_path / "a")), max_bytes=1 << 20, max_pixels=1 << 22)
    with pytest.raises(ValueError):
        ConditioningInputs(assets, sources=EditSources(AssetStore(LocalBlobs(tmp_path / "b"))))
