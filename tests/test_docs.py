"""The docs stay in step with the code: every setting in the README, every route in docs/API.md."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_the_readme():
    settings = set(re.findall(r"ATELIER_[A-Z0-9_]+", (REPO / "service" / "config.py").read_text()))
    readme = (REPO / "README.md").read_text()
    assert settings, "config.py reads no ATELIER_* variable?"
    missing = sorted(name for name in settings if f"`{name}`" not in readme)
    assert not missing, f"README's configuration table lacks {missing}"


def every_route() -> set[str]:
    """BentoML APIs (route="...") and the mounted /v1 sub-app's routes."""
    from service.admin_api import ROUTES
    from service.jobs_api import job_routes

    routes = set(re.findall(r'route="(/[^"]+)"', (REPO / "service" / "app.py").read_text()))
    routes |= {"/v1" + path for path, *_ in ROUTES} | {"/v1" + route.path for route in job_routes()}
    return routes | {"/v1/verify", "/v1/usage"}


def test_every_route_is_in_the_api_doc():
    routes = every_route()
    api = (REPO / "docs" / "API.md").read_text()
    assert len(routes) > 20
    missing = [r for r in sorted(routes) if f"POST {r}`" not in api and f"GET {r}`" not in api]
    assert not missing, f"docs/API.md does not document {missing}"
    no_curl = [r for r in sorted(routes) if not re.search(rf"127\.0\.0\.1:3000{re.escape(r)}[ \n?\"']", api)]
    assert not no_curl, f"no curl example for {no_curl}"
