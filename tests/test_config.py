"""Settings come from ATELIER_* variables with embedded defaults; bad values are named."""

from pathlib import Path

import pytest

from service.config import ConfigError, Settings


def test_defaults_live_under_home(tmp_path):
    settings = Settings.from_env({"ATELIER_HOME": str(tmp_path)})
    assert settings.home == tmp_path.resolve()
    assert settings.base_model == tmp_path.resolve() / "demo" / "pipeline"
    assert settings.db_url == f"sqlite:///{tmp_path.resolve() / 'registry.db'}" and settings.db_migrate is True
    assert settings.device == "auto" and settings.backend == "eager" and settings.warmup is True
    assert settings.cpu_threads == 1


def test_base_model_override(tmp_path):
    settings = Settings.from_env({"ATELIER_HOME": str(tmp_path), "ATELIER_BASE_MODEL": "/models/sdxl"})
    assert settings.base_model == Path("/models/sdxl")


@pytest.mark.parametrize(
    "name, value",
    [
        ("ATELIER_DEVICE", "tpu"),
        ("ATELIER_DTYPE", "int8"),
        ("ATELIER_BACKEND", "magic"),
        ("ATELIER_WARMUP", "maybe"),
        ("ATELIER_MAX_BODY_BYTES", "lots"),
        ("ATELIER_MAX_BODY_BYTES", "10"),
        ("ATELIER_CPU_THREADS", "-1"),
    ],
)
def test_bad_values_are_refused_by_name(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
