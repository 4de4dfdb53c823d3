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


def test_every_route_is_in_the_api_doc():
    routes = set(re.findall(r'route="(/[^"]+)"', (REPO / "service" / "app.py").read_text()))
    api = (REPO / "docs" / "API.md").read_text()
    assert routes
    for route in routes:
        assert f"POST {route}`" in api or f"GET {route}`" in api, route
        assert re.search(rf"127\.0\.0\.1:3000{re.escape(route)}[ \n]", api), f"no curl example for {route}"
