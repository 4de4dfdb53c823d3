"""`bentoml build` on the checkout: one CUDA bento with both services (the CPU gateway as its
entry, the GPU renderer it depends on), the service code and nothing private, built in a
throw-away BENTOML_HOME without installing the CUDA requirements here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bento(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("bentoml-home")
    bentoml = Path(sys.executable).with_name("bentoml")
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True"}
    done = subprocess.run([str(bentoml), "build", "--output", "tag"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    tag = done.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    return home / "bentos" / name / version


def test_the_bento_holds_the_service_and_its_migrations(bento):
    src = bento / "src"
    for module in ("gateway/service.py", "gateway/api.py", "renderer/service.py", "renderer/runtime.py",
                   "jobs/dispatcher.py", "jobs/webhook_sender.py"):
        assert (src / "service" / module).is_file(), module
    assert not (src / "service" / "app.py").exists() and not (src / "service" / "jobs" / "runner.py").exists()
    assert list((src / "service" / "registry" / "migrations" / "versions").glob("0*.py"))
    assert (src / "service" / "registry" / "migrations" / "script.py.mako").is_file()


def test_nothing_private_or_heavy_is_packed(bento):
    files = [p.relative_to(bento / "src") for p in (bento / "src").rglob("*") if p.is_file()]
    assert files
    for path in files:
        parts = set(path.parts)
        assert not parts & {"var", "tests", "bench", ".venv", ".git"}, path
        assert path.suffix not in {".safetensors", ".pem", ".key", ".db", ".onnx", ".plan", ".env"}, path


def test_a_cuda_image_with_the_cuda_torch_and_secrets_only_as_env_names(bento):
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    assert "FROM nvidia/cuda:12.8.1" in dockerfile
    requirements = (bento / "env" / "python" / "requirements.txt").read_text().splitlines()
    assert "torch==2.13.0+cu128" in requirements
    assert "download.pytorch.org/whl/cu128" in (bento / "env" / "python" / "install.sh").read_text()
    spec = yaml.safe_load((bento / "bento.yaml").read_text())
    envs = {e["name"]: e.get("value", "") for e in spec["envs"]}
    for secret in ("ATELIER_DB_URL", "ATELIER_C2PA_KEY", "ATELIER_AUDIT_KEY", "ATELIER_AUDIT_S3"):
        assert envs[secret] == "", secret  # declared, never valued
    assert spec["service"] == "service.gateway.service:Gateway" and spec["entry_service"] == "atelier-gateway"
    services = {service["name"]: service for service in spec["services"]}
    assert set(services) == {"atelier-gateway", "atelier-renderer"}
    gateway, renderer = services["atelier-gateway"], services["atelier-renderer"]
    assert [d["service"] for d in gateway["dependencies"]] == ["atelier-renderer"] and renderer["dependencies"] == []
    assert "gpu" not in (gateway["config"].get("resources") or {})  # the gateway runs on a CPU instance
    assert renderer["config"]["resources"]["gpu"] == 1
    traffic = renderer["config"]["traffic"]
    assert traffic["external_queue"] is True and traffic["timeout"] >= 600 and traffic["concurrency"] <= traffic["max_concurrency"]
    # a synchronous generation waits for its render call: the gateway's timeout covers the renderer's
    assert gateway["config"]["traffic"]["timeout"] >= traffic["timeout"]
    assert gateway["config"]["traffic"]["max_concurrency"] > traffic["max_concurrency"]  # cheap reads never queue behind GPU work
