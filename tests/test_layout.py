"""The shape of `service/` (docs/ARCHITECTURE.md): no import cycle, at module level or inside
functions; no file over 500 lines but the TensorRT backend; bentoml only in the two service
modules; and nothing the gateway loads imports torch or diffusers. `bench/import_graph.py`
reads it with `ast`; its own checks below run on small trees written here."""

from __future__ import annotations

from pathlib import Path

from bench.import_graph import analyse

ROOT = Path(__file__).resolve().parent.parent
LONG_FILES_ALLOWED = {"service/engine/backends/tensorrt.py"}  # one backend, mostly TensorRT's own API


def test_service_has_no_import_cycle_and_no_overlong_file():
    report = analyse(ROOT, limit=500)
    assert report["cycles"]["module_level"] == []
    assert report["cycles"]["all"] == []  # function-level imports close no ring either
    assert {path for path, _ in report["files_over_limit"]} <= LONG_FILES_ALLOWED


def test_bentoml_is_imported_by_the_two_service_modules_and_the_gateway_never_loads_torch():
    report = analyse(ROOT, limit=500)
    assert report["bentoml_importers"] == ["service.gateway.service", "service.renderer.service"]
    assert report["gateway_loads_torch_through"] == []


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_graph_sees_function_level_cycles_and_leaves_out_type_only_and_script_imports(tmp_path):
    root = write(tmp_path, {
        "service/__init__.py": "",
        "service/a.py": "from service import b\n",
        "service/b.py": "def later():\n    from service.a import x\n",  # closes a ring only when called
        "service/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from service.a import x\n",
        "service/d.py": "if __name__ == '__main__':\n    from service.c import y\n",
        "service/pkg/__init__.py": "from .inner import z\n",  # relative imports resolve
        "service/pkg/inner.py": "from .. import pkg\n" + "x = 1\n" * 501,
    })
    report = analyse(root, limit=500)
    assert report["cycles"]["module_level"] == [["service.pkg", "service.pkg.inner"]]
    assert sorted(report["cycles"]["all"]) == [["service.a", "service.b"], ["service.pkg", "service.pkg.inner"]]
    assert report["edges"] == {"module_level": 3, "function_level_only": 1, "all": 4}  # c and d add none
    assert report["files_over_limit"] == [("service/pkg/inner.py", 502)]


def test_the_gateway_check_follows_module_level_imports_and_package_inits(tmp_path):
    root = write(tmp_path, {
        "service/__init__.py": "",
        "service/gateway/__init__.py": "",
        "service/gateway/service.py": "import bentoml\nfrom service.jobs.run import go\n",
        "service/jobs/__init__.py": "from service.engine import lazy\n",  # runs when jobs.run is imported
        "service/jobs/run.py": "def go():\n    import torch\n",  # inside a function: not at load
        "service/engine/__init__.py": "def lazy():\n    pass\n",
        "service/engine/pipeline.py": "import torch\n",  # never reached from the gateway
    })
    assert analyse(root, limit=500)["gateway_loads_torch_through"] == []
    (root / "service/engine/__init__.py").write_text("import diffusers\n")
    report = analyse(root, limit=500)
    assert report["gateway_loads_torch_through"] == ["service.engine"]
    assert report["bentoml_importers"] == ["service.gateway.service"]
