"""Regenerate Atelier's official clients from the API contract (`make clients`).

Owns: exporting the OpenAPI document from the gateway's router, without serving it
(`service.gateway.openapi.build_document`, the document `/docs.json` answers), to
clients/openapi.json; regenerating from that file the Python client's generated package
(clients/python/atelier_client/generated/, by openapi-python-client, pinned in
clients/generator-requirements.txt and run from its own venv, clients/.venv) and the
TypeScript client's types (clients/typescript/src/schema.d.ts, by openapi-typescript, pinned
in clients/typescript/package-lock.json); and `--check`, which regenerates everything into a
temporary directory and names every file that differs from the committed one, writing
nothing. Generation always happens in a temporary directory, away from any configuration of
the repository, and then replaces the generated files whole (a removed operation leaves no
stale module behind).

Must never touch the hand-written layers (clients/python/atelier_client/*.py,
clients/typescript/src/*.ts other than schema.d.ts) and never reach the network.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CLIENTS = Path(__file__).resolve().parent
ROOT = CLIENTS.parent
DOCUMENT = CLIENTS / "openapi.json"
PY_CONFIG = CLIENTS / "python" / "generator.yaml"
PY_TEMPLATES = CLIENTS / "python" / "templates"  # overrides of the generator's own templates
PY_GENERATED = CLIENTS / "python" / "atelier_client" / "generated"
GENERATOR_BIN = CLIENTS / ".venv" / "bin"
TS_DIR = CLIENTS / "typescript"
TS_SCHEMA = TS_DIR / "src" / "schema.d.ts"
TS_GENERATOR = TS_DIR / "node_modules" / "openapi-typescript" / "bin" / "cli.js"


class GeneratorMissing(RuntimeError):
    """A pinned generator is not installed (`make install` installs both)."""


def export_document() -> bytes:
    """The contract as clients/openapi.json holds it: the served document, indented, one final newline."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from service.gateway.api import build_api
    from service.gateway.openapi import build_document

    return (json.dumps(build_document(build_api()), indent=2, ensure_ascii=False) + "\n").encode()


def generate_python(document: Path, into: Path) -> None:
    """openapi-python-client's package for `document`, written to `into` (which must not exist)."""
    generator = GENERATOR_BIN / "openapi-python-client"
    if not generator.exists():
        raise GeneratorMissing(f"{generator.relative_to(ROOT)} is missing: run `make install` "
                               "(it installs clients/generator-requirements.txt into clients/.venv)")
    with tempfile.TemporaryDirectory(prefix="atelier-pyclient-") as work:
        out = Path(work) / "generated"
        env = {**os.environ, "PATH": f"{GENERATOR_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        command = [str(generator), "generate", "--path", str(document), "--meta", "none", "--config", str(PY_CONFIG),
                   "--custom-template-path", str(PY_TEMPLATES), "--output-path", str(out), "--fail-on-warning"]
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"openapi-python-client failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        shutil.copytree(out, into, ignore=shutil.ignore_patterns("__pycache__", ".ruff_cache"))


def generate_typescript(document: Path, into: Path) -> None:
    """openapi-typescript's `paths`/`components` types for `document`, written to the file `into`."""
    node = shutil.which("node")
    if node is None or not TS_GENERATOR.exists():
        raise GeneratorMissing("node or clients/typescript/node_modules is missing: install Node 20 and npm, "
                               "then run `make install` (npm ci in clients/typescript)")
    into.parent.mkdir(parents=True, exist_ok=True)
    # Defaults do not make a property required: a request may leave out what has a default.
    command = [node, str(TS_GENERATOR), str(document), "--output", str(into), "--default-non-nullable", "false"]
    done = subprocess.run(command, cwd=TS_DIR, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"openapi-typescript failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def differences(expected: Path, actual: Path) -> list[str]:
    """Relative paths that differ between two trees (or two files): changed, missing or extra."""
    if expected.is_file() or actual.is_file():
        same = expected.is_file() and actual.is_file() and filecmp.cmp(expected, actual, shallow=False)
        return [] if same else [actual.name]

    def files(root: Path) -> set[str]:
        if not root.exists():
            return set()
        return {str(p.relative_to(root)) for p in root.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and ".ruff_cache" not in p.parts}

    left, right = files(expected), files(actual)
    changed = [name for name in sorted(left & right) if not filecmp.cmp(expected / name, actual / name, shallow=False)]
    return sorted({*changed, *(left ^ right)})


def check(typescript: bool = True) -> list[str]:
    """What `make clients` would change, as repository-relative paths; [] when all is up to date."""
    stale: list[str] = []
    with tempfile.TemporaryDirectory(prefix="atelier-clients-check-") as work:
        document = Path(work) / "openapi.json"
        document.write_bytes(export_document())
        if not DOCUMENT.exists() or DOCUMENT.read_bytes() != document.read_bytes():
            stale.append(str(DOCUMENT.relative_to(ROOT)))
        generate_python(document, Path(work) / "python")
        stale += [str((PY_GENERATED / name).relative_to(ROOT)) for name in differences(Path(work) / "python", PY_GENERATED)]
        if typescript:
            generate_typescript(document, Path(work) / "schema.d.ts")
            if differences(Path(work) / "schema.d.ts", TS_SCHEMA):
                stale.append(str(TS_SCHEMA.relative_to(ROOT)))
    return stale


def regenerate(typescript: bool = True) -> None:
    DOCUMENT.write_bytes(export_document())
    print(f"wrote {DOCUMENT.relative_to(ROOT)}")
    with tempfile.TemporaryDirectory(prefix="atelier-clients-") as work:
        fresh = Path(work) / "python"
        generate_python(DOCUMENT, fresh)
        shutil.rmtree(PY_GENERATED, ignore_errors=True)
        shutil.copytree(fresh, PY_GENERATED)
    print(f"wrote {PY_GENERATED.relative_to(ROOT)}/")
    if typescript:
        generate_typescript(DOCUMENT, TS_SCHEMA)
        print(f"wrote {TS_SCHEMA.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; list the files that are out of date")
    parser.add_argument("--no-typescript", action="store_true", help="leave the TypeScript types alone")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = check(typescript=not args.no_typescript)
            for name in stale:
                print(f"out of date: {name}")
            if stale:
                print("run `make clients` and commit the result")
            return 1 if stale else 0
        regenerate(typescript=not args.no_typescript)
    except GeneratorMissing as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
