"""A replica on a fresh disk fetches the base model from S3 (ATELIER_BASE_MODEL_S3), checks
every file's sha256, and serves; a tampered file stops it from starting."""

from __future__ import annotations

import pytest

from service.config import Settings
from service.engine.artifacts import ArtifactError
from service.schemas import GenerateRequest


@pytest.fixture()
def uploaded(copied_home, s3_server, monkeypatch):
    from builds.compile import main

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    url = f"s3://{s3_server.bucket}/models/demo-{copied_home.parent.name}"
    code = main(["upload-model", url, "--pipeline", str(copied_home / "demo" / "pipeline"),
                 "--endpoint-url", s3_server.endpoint_url, "--region", s3_server.region, "--quiet"])
    assert code == 0
    return url


def replica_settings(tmp_path, copied_home, s3_server, url) -> Settings:
    return Settings.from_env({
        "ATELIER_HOME": str(tmp_path / "replica"), "ATELIER_BASE_MODEL_S3": url, "ATELIER_WARMUP": "0",
        "ATELIER_ADAPTERS_DIR": str(copied_home / "adapters"), "ATELIER_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "ATELIER_S3_REGION": s3_server.region,
    })


def test_a_fresh_replica_downloads_verifies_and_serves(uploaded, copied_home, s3_server, tmp_path):
    from service.engine import Engine
    from service.registry import open_registry

    settings = replica_settings(tmp_path, copied_home, s3_server, uploaded)
    engine = Engine.from_settings(settings, open_registry(Settings.from_env({"ATELIER_HOME": str(copied_home)}).db_url))
    assert (tmp_path / "replica" / "models" / "base" / "model_index.json").is_file()
    assert "download_weights" in engine.startup_ms and engine.base_model_id.startswith("base@")
    result = engine.generate(GenerateRequest(twin_id="demo-ava", prompt="studio photo", width=256, height=256, steps=2))
    assert result.images and result.adapter_sha256


def test_a_tampered_weight_file_stops_the_replica(uploaded, copied_home, s3_server, tmp_path):
    from service.engine import Engine
    from service.registry import open_registry

    bucket, prefix = uploaded[5:].split("/", 1)
    s3_server.client().put_object(Bucket=bucket, Key=f"{prefix}/unet/diffusion_pytorch_model.safetensors", Body=b"tampered")
    settings = replica_settings(tmp_path, copied_home, s3_server, uploaded)
    with pytest.raises(ArtifactError, match="sha256"):
        Engine.from_settings(settings, open_registry(Settings.from_env({"ATELIER_HOME": str(copied_home)}).db_url))
