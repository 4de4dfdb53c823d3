"""The docs stay in step with the code: every setting in the README, every route (with its
method) in docs/API.md."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_the_readme():
    settings = set(re.findall(r"ATELIER_[A-Z0-9_]+", (REPO / "service" / "config.py").read_text()))
    readme = (REPO / "README.md").read_text()
    assert settings, "config.py reads no ATELIER_* variable?"
    missing = sorted(name for name in settings if f"`{name}`" not in readme)
    assert not missing, f"README's configuration table lacks {missing}"


def every_route() -> set[tuple[str, str]]:
    """(method, path) of every public route: the gateway's one router, mounted at /v1."""
    from fastapi.routing import APIRoute

    from service.gateway.api import ROUTERS

    return {(method, "/v1" + route.path) for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)
            for method in route.methods}


def test_every_route_is_in_the_api_doc():
    routes = every_route()
    api = (REPO / "docs" / "API.md").read_text()
    assert len(routes) > 20
    assert ("GET", "/v1/jobs/status") in routes and ("POST", "/v1/generate") in routes
    # documented under its own method: reads are GET, writes POST
    missing = [f"{method} {path}" for method, path in sorted(routes) if f"{method} {path}`" not in api]
    assert not missing, f"docs/API.md does not document {missing}"
    paths = sorted({path for _, path in routes})

    def pattern(path: str) -> str:  # a path parameter matches any one segment of the example
        return re.sub(r"\\\{[a-z_]+\\\}", r"[^/ \\n?\"']+", re.escape(path))

    no_curl = [r for r in paths if not re.search(rf"127\.0\.0\.1:3000{pattern(r)}[ \n?\"']", api)]
    assert not no_curl, f"no curl example for {no_curl}"
