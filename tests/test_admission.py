"""One admission (`Tenancy.admit`: key, scope, limits, the audit of refusals) for every caller,
and a module graph without import cycles, in which Studio reaches capabilities, not routes.

The static checks read the source with `ast`; the others run the real gateway in this process
(the `client` fixture) and read its audit log from disk.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ROOT / "service"


def modules() -> dict[str, Path]:
    found = {}
    for path in SERVICE.rglob("*.py"):
        if "node_modules" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def imports(mods: dict[str, Path]) -> dict[str, dict[str, str]]:
    """module -> {imported service module: "module" or "function"}. `from pkg import sub` is an
    import of pkg.sub; code under `if __name__ == "__main__":` runs only as a script and is skipped."""

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, str]] = {}
    for module, path in mods.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges: dict[str, str] = {}

        def walk(node: ast.AST, in_function: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "__main__" in ast.unparse(child.test):
                    continue
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    if isinstance(child, ast.Import):
                        names = [alias.name for alias in child.names]
                    else:
                        base = child.module or ""
                        if child.level:
                            parts = package.split(".")
                            base = ".".join(parts[: len(parts) - child.level + 1] + ([base] if base else []))
                        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in child.names]
                    for name in names:
                        target = resolve(name)
                        if target and target != module:
                            kind = "function" if in_function else "module"
                            edges[target] = "module" if edges.get(target) == "module" else kind
                walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

        walk(ast.parse(path.read_text()), False)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_service_has_no_import_cycle_at_module_level_or_inside_functions():
    graph = imports(modules())
    assert sum(len(edges) for edges in graph.values()) > 300  # the graph was read (not an empty walk)
    assert cycles(graph) == []


def test_studio_reaches_capabilities_not_routes_and_the_gateway_imports_studio_only_to_mount_it():
    graph = imports(modules())
    into_gateway = sorted((m, t) for m, edges in graph.items() if m.startswith("service.studio")
                          for t in edges if t.startswith("service.gateway"))
    assert into_gateway == []
    into_studio = sorted((m, t) for m, edges in graph.items() if not m.startswith("service.studio")
                         for t in edges if t.startswith("service.studio"))
    assert into_studio == [("service.gateway.service", "service.studio")]
    studio = "".join(p.read_text() for p in (SERVICE / "studio").glob("*.py"))
    assert not re.search(r"(?<![A-Za-z])Request\(", studio)  # no request built by hand to call a route


def test_keys_are_resolved_and_limits_spent_only_through_tenancy_admit():
    """Outside the registry and tenancy, no module resolves a key, builds a Principal or counts a limit."""
    by_hand = re.compile(r"\.authenticate\(|\.active_key\(|\bPrincipal\(|\.limiter\b|tenancy\.limits\(")
    offenders = []
    for path in SERVICE.rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(("service/registry/", "service/tenancy/")) or "node_modules" in relative:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if by_hand.search(line):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []
    admits = [p.relative_to(ROOT).as_posix() for p in SERVICE.rglob("*.py") if "tenancy.admit(" in p.read_text()]
    assert {"service/gateway/deps.py", "service/gateway/service.py", "service/jobs/dispatcher.py",
            "service/studio/pages.py", "service/studio/signin.py", "service/studio/live.py"} <= set(admits)


@pytest.fixture()
def core(client):
    from service.gateway.service import API

    return API.state.core


def test_job_items_are_admitted_as_their_submitter_now_without_spending_its_rate_limit(core):
    from service.errors import Forbidden, Unauthorized
    from service.tenancy import KeyRef, Limits
    from service.tenancy.ratelimit import RateLimited

    key_id, _ = core.registry.create_api_key("demo", ["generate"], name="one-a-minute", requests_per_minute=1)
    submitter = KeyRef(key_id, "demo", named="the API key that submitted this job")
    for _ in range(3):  # a job's items: checked each time, nothing spent
        with core.tenancy.admit(submitter, "generate", limits=Limits.NONE) as principal:
            assert (principal.key_id, principal.tenant_id) == (key_id, "demo")
    with core.tenancy.admit(submitter, "generate", limits=Limits.REQUEST):
        pass
    with pytest.raises(RateLimited):  # a request spends the key's one request a minute
        with core.tenancy.admit(submitter, "generate", limits=Limits.REQUEST):
            pass
    with pytest.raises(Forbidden, match="the API key that submitted this job lacks the 'admin' scope"):
        with core.tenancy.admit(submitter, "admin", limits=Limits.NONE):
            pass
    with pytest.raises(Unauthorized, match="no longer valid"):  # another tenant's job
        with core.tenancy.admit(KeyRef(key_id, "rival"), "generate", limits=Limits.NONE):
            pass
    core.registry.revoke_key(key_id)
    with pytest.raises(Unauthorized, match="the API key that submitted this job is no longer valid"):
        with core.tenancy.admit(submitter, "generate", limits=Limits.NONE):
            pass


def test_a_studio_action_refused_by_its_keys_rate_limit_is_audited_once_naming_the_key(client, admin_headers, records):
    minted = client.post("/v1/admin/keys", headers=admin_headers, json={
        "tenant_id": "demo", "scopes": ["talent"], "twin_ids": ["demo-cleo"], "requests_per_minute": 1,
        "name": "slow talent"}).json()
    key_id = minted["key"]["key_id"]
    try:
        page = client.get("/studio/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        assert client.post("/studio/login", data={"api_key": minted["token"], "csrf_token": csrf},
                           follow_redirects=False).status_code == 303
        assert client.get("/studio/twins").status_code == 200  # a page read spends nothing
        assert client.get("/studio/usage").status_code == 200  # an action spends the key's one request
        refused = client.get("/studio/usage")
        assert refused.status_code == 429 and "text/html" in refused.headers["content-type"]
        assert int(refused.headers["retry-after"]) >= 1
        assert client.get("/studio/audit").status_code == 403  # a talent key: no audit page, as on the API
    finally:
        client.cookies.clear()
    mine = records("key_id", key_id)
    refusals = [(r["event"], r["route"], r["reason"], r["status"]) for r in mine if r["event"] == "refused_at_edge"]
    assert refusals == [("refused_at_edge", "/studio/usage", "rate_limited", 429)]
    reports = [r for r in records("event", "admin.talent_usage") if r["actor"]["key_id"] == key_id]
    assert [r["outcome"] for r in reports] == ["ok"]  # the one report served, recorded as the API's
