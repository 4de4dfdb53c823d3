"""The shape of `service/`: modules, import edges, import cycles and long files, read with `ast`.

Counts every module under `service/` (packages by their `__init__`), and every import of one
module of `service` by another: module-level imports (run when the module loads) and
function-level ones (run when the function first does), each resolved to the most specific
module it names (`from service.twins import s3_store` is an edge to `service.twins.s3_store`;
`from service.twins import TwinRecord` one to `service.twins`). Imports under
`if TYPE_CHECKING:` never run, and those under `if __name__ == "__main__":` run only
in a script, not on import: both are left out. A cycle is a strongly connected component of
more than one module: first over module-level edges, then over all of them. Also lists the
edges that point upward (layers below), the files over the line limit, which modules import bentoml, and which gateway modules reach torch
or diffusers through module-level imports. Reads files only; imports nothing of the project.

    python bench/import_graph.py [--root DIR] [--limit 500] [--json]
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import defaultdict
from pathlib import Path

HEAVY = ("torch", "diffusers")  # what the gateway must never load
# Dependencies point one way, down this list (docs/ARCHITECTURE.md): an import of a module of a
# higher layer is an upward edge. Root modules not named here (config, errors, schemas,
# rendering, ...) are the foundation, layer 1.
LAYERS = {
    4: ("gateway", "renderer", "studio", "cli", "commands"),  # the service modules and the admin CLI
    3: ("tenancy", "jobs", "audit", "provenance", "engine", "conditioning"),  # capabilities
    2: ("twins", "registry", "assets"),  # what the capabilities keep and read
}


def layer_of(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    return next((layer for layer, parts in LAYERS.items() if part in parts), 1)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def is_main(test: ast.expr) -> bool:
    """`if __name__ == "__main__":`, whose imports run only when the module is run as a script."""
    return isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__" \
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)


def imports(tree: ast.Module, name: str, is_package: bool):
    """Yield (imported dotted name, names imported from it or None, function_level)."""

    def visit(node: ast.AST, in_function: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and (is_type_checking(child.test) or is_main(child.test)):
                for sub in child.orelse:
                    yield from visit_one(sub, in_function)
                continue
            yield from visit_one(child, in_function)

    def visit_one(child: ast.AST, in_function: bool):
        if isinstance(child, ast.Import):
            for alias in child.names:
                yield alias.name, None, in_function
        elif isinstance(child, ast.ImportFrom):
            base = child.module or ""
            if child.level:
                package = name if is_package else name.rpartition(".")[0]
                for _ in range(child.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            yield base, [alias.name for alias in child.names], in_function
        else:
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from visit(child, nested)

    yield from visit(tree, False)


def strongly_connected(nodes, edges) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module, each sorted."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter[0]
                    counter[0] += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(edges.get(succ, ())))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found, key=lambda c: (-len(c), c))


def reachable(start: str, edges) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for succ in edges.get(todo.pop(), ()):
            if succ not in seen:
                seen.add(succ)
                todo.append(succ)
    return seen


def analyse(root: Path, limit: int) -> dict:
    package = root / "service"
    files = sorted(p for p in package.rglob("*.py") if "node_modules" not in p.parts)
    modules = {module_name(p, root): p for p in files}
    module_edges: dict[str, set[str]] = defaultdict(set)
    function_edges: dict[str, set[str]] = defaultdict(set)
    third_party: dict[str, set[str]] = defaultdict(set)  # module -> top-level packages (module level)
    bentoml_users: set[str] = set()
    long_files = []
    for name, path in modules.items():
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        if lines > limit:
            long_files.append((str(path.relative_to(root)), lines))
        tree = ast.parse(text, filename=str(path))
        for target, names, in_function in imports(tree, name, path.name == "__init__.py"):
            top = target.split(".")[0]
            if top != "service":
                if top == "bentoml":
                    bentoml_users.add(name)
                if not in_function:
                    third_party[name].add(top)
                continue
            resolved = []
            for sub in names or []:
                if f"{target}.{sub}" in modules:
                    resolved.append(f"{target}.{sub}")
                elif target in modules:
                    resolved.append(target)
            if not names:
                resolved.append(target if target in modules else target.rpartition(".")[0])
            for dest in resolved:
                if dest != name and dest in modules:
                    (function_edges if in_function else module_edges)[name].add(dest)
    all_edges = {m: module_edges.get(m, set()) | function_edges.get(m, set()) for m in modules}
    only_function = {(a, b) for a, bs in function_edges.items() for b in bs if b not in module_edges.get(a, ())}
    # Modules that load torch or diffusers when the gateway's service module loads (importing
    # a module also runs its packages' `__init__`: those edges count here).
    loading = {m: set(module_edges.get(m, ())) for m in modules}
    for m in modules:
        parent = m.rpartition(".")[0]
        while parent:
            if parent in modules and parent != m:
                loading[m].add(parent)
            parent = parent.rpartition(".")[0]
    gateway_root = "service.gateway.service"
    heavy = []
    if gateway_root in modules:
        for member in sorted(reachable(gateway_root, loading)):
            if third_party.get(member, set()) & set(HEAVY):
                heavy.append(member)
    upward = sorted((a, b, "function" if b not in module_edges.get(a, ()) else "module")
                    for a, bs in all_edges.items() for b in bs if layer_of(b) > layer_of(a))
    return {
        "modules": len(modules),
        "upward_edges": upward,
        "edges": {"module_level": sum(len(v) for v in module_edges.values()), "function_level_only": len(only_function),
                  "all": sum(len(v) for v in all_edges.values())},
        "cycles": {"module_level": strongly_connected(modules, module_edges),
                   "all": strongly_connected(modules, all_edges)},
        "files_over_limit": sorted(long_files, key=lambda f: -f[1]),
        "limit": limit,
        "bentoml_importers": sorted(bentoml_users),
        "gateway_loads_torch_through": heavy,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the repository root (default: this checkout)")
    parser.add_argument("--limit", type=int, default=500, help="line limit per file (default 500)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    report = analyse(args.root.resolve(), args.limit)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    cycles = report["cycles"]
    print(f"modules under service/: {report['modules']}")
    print(f"import edges: {report['edges']['all']} ({report['edges']['module_level']} module-level, "
          f"{report['edges']['function_level_only']} only inside functions)")
    for kind, label in (("module_level", "module-level"), ("all", "module- and function-level")):
        found = cycles[kind]
        print(f"import cycles, {label}: {len(found)}"
              + (f" (modules in them: {sum(len(c) for c in found)})" if found else ""))
        for component in found:
            print(f"  {len(component)}: " + " <-> ".join(m.removeprefix('service.') for m in component))
    print(f"edges pointing upward (layers: {', '.join(f'{k}: ' + '/'.join(v) for k, v in LAYERS.items())}, "
          f"1: the rest): {len(report['upward_edges'])}")
    for a, b, level in report["upward_edges"]:
        print(f"  {a.removeprefix('service.')} -> {b.removeprefix('service.')} ({level} level)")
    print(f"files over {report['limit']} lines: {len(report['files_over_limit'])}")
    for path, lines in report["files_over_limit"]:
        print(f"  {path}: {lines}")
    print("modules importing bentoml: " + (", ".join(report["bentoml_importers"]) or "none"))
    print("modules the gateway loads that import torch/diffusers at module level: " + (", ".join(report["gateway_loads_torch_through"]) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
