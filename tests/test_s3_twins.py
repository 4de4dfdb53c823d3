"""Twins served from a real S3-compatible bucket (SeaweedFS), through the engine and its cache."""

import pytest

from service.config import Settings
from service.engine import Engine
from service.errors import AdapterUnavailable
from service.schemas import GenerateRequest
from service.twins.adapters import TwinAdapters


@pytest.fixture()
def s3_engine(engine, demo_home, s3_server, tmp_path, monkeypatch):
    """The shared pipeline, with twins whose adapters live only in S3 under a fresh prefix."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    prefix = f"twins-{tmp_path.name}"
    client = s3_server.client()
    for twin in ("demo-ava", "demo-ben", "demo-cleo"):
        client.put_object(Bucket=s3_server.bucket, Key=f"{prefix}/{twin}.safetensors",
                          Body=(demo_home / "adapters" / f"{twin}.safetensors").read_bytes())
    settings = Settings.from_env({
        "ATELIER_HOME": str(demo_home),
        "ATELIER_ADAPTER_STORE": f"s3://{s3_server.bucket}/{prefix}",
        "ATELIER_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "ATELIER_S3_REGION": s3_server.region,
        "ATELIER_CACHE_DIR": str(tmp_path / "cache"),
    })
    twins = TwinAdapters.build(settings, engine.twins.catalog.registry, engine.pipe.unet, engine.device, slot=engine.twins.slot)
    assert twins.store.describe().startswith("s3://")
    return Engine(engine.pipe, engine.device, engine.backend, twins, conditioning=engine.conditioning)  # one UNet


def req(twin_id):
    return GenerateRequest(twin_id=twin_id, prompt="studio photo", width=256, height=256, steps=2, seed=21)


def test_twin_from_s3_gives_the_same_image_as_from_local_store(engine, s3_engine):
    from_s3 = s3_engine.generate(req("demo-ava"))
    assert from_s3.adapter_source == "store"
    assert from_s3.images[0].data == engine.generate(req("demo-ava")).images[0].data
    assert s3_engine.generate(req("demo-ava")).adapter_source == "device"


def test_s3_outage_only_hurts_cold_twins(s3_engine, s3_server):
    s3_engine.generate(req("demo-ben"))  # warm: now on the device
    s3_server.stop()
    try:
        assert s3_engine.generate(req("demo-ben")).adapter_source == "device"
        with pytest.raises(AdapterUnavailable):
            s3_engine.generate(req("demo-cleo"))
    finally:
        s3_server.start()
    assert s3_engine.generate(req("demo-cleo")).adapter_source == "store"
