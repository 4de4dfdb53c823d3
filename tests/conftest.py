"""Shared fixtures: the demo assets are built once per session into a temp dir (no downloads)."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from builds.demo import ENV_FILE, build_demo, read_demo_env
from service.config import Settings, get_settings

pytest_plugins = ["tests.s3server"]
REPO_ROOT = Path(__file__).resolve().parent.parent
SMALL = {"width": 256, "height": 256, "steps": 2}


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("atelier-home")
    build_demo(home)
    return home


@pytest.fixture(scope="session")
def demo_keys(demo_home) -> dict[str, str]:
    """ATELIER_DEMO_KEY (generate+verify) and ATELIER_ADMIN_KEY from the demo's demo.env."""
    return read_demo_env(demo_home / ENV_FILE)


@pytest.fixture(scope="session")
def admin_headers(demo_keys) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo_keys['ATELIER_ADMIN_KEY']}"}


@pytest.fixture(scope="session")
def settings(demo_home) -> Settings:
    return Settings.from_env({"ATELIER_HOME": str(demo_home), "ATELIER_WARMUP": "0"})


@pytest.fixture(scope="session")
def registry(settings):
    from service.registry import open_registry

    return open_registry(settings.db_url)


@pytest.fixture(scope="session")
def engine(settings, registry):
    from service.engine import Engine

    return Engine.from_settings(settings, registry)


def snapshot_registry(home: Path, dest: Path) -> Path:
    """A consistent copy of `home`'s SQLite registry, taken through SQLite's backup API.

    Never open, read or copy a live registry's files with plain file I/O: closing any file
    descriptor of a SQLite database drops every POSIX lock this process holds on it, so
    another process (a `bentoml serve` under test) believes it is alone, resets the WAL's
    shared memory, and this process dies of SIGBUS on its next query."""
    import sqlite3

    source, target = sqlite3.connect(home / "registry.db"), sqlite3.connect(dest)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return dest


def kill_all(server) -> None:
    """SIGKILL a served bento whole: its arbiter and every worker (gateway and renderers run in
    sessions of their own), as a lost machine would; no shutdown hook runs anywhere."""
    import signal

    import psutil

    pids = [server.process.pid, *server.workers]
    try:
        pids += [child.pid for child in psutil.Process(server.process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        pass
    for pid in dict.fromkeys(pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.process.wait(30)
    for pid in pids:
        try:
            psutil.Process(pid).wait(30)
        except psutil.NoSuchProcess:
            pass


@pytest.fixture()
def copied_home(demo_home, tmp_path) -> Path:
    """A private copy of the demo home that a test may damage."""
    target = tmp_path / "home"
    shutil.copytree(demo_home, target, ignore=shutil.ignore_patterns("cache", "registry.db*"))
    snapshot_registry(demo_home, target / "registry.db")
    return target


@pytest.fixture(scope="session")
def client(demo_home, demo_keys):
    """The gateway's ASGI app (every route but /metrics), started like a server would, with its
    renderer in this process. Requests carry the demo tenant's generate+verify key unless a
    test sends other headers."""
    from starlette.testclient import TestClient

    # One service instance per process: BentoML registers its Prometheus metrics once.
    saved = {name: os.environ.get(name) for name in ("ATELIER_HOME", "ATELIER_REGISTRY_POLL_MS")}
    os.environ["ATELIER_HOME"] = str(demo_home)
    os.environ["ATELIER_REGISTRY_POLL_MS"] = "100"
    get_settings.cache_clear()
    from service.gateway.service import Gateway

    headers = {"Authorization": f"Bearer {demo_keys['ATELIER_DEMO_KEY']}"}
    with TestClient(Gateway.to_asgi(), headers=headers) as test_client:
        yield test_client
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()


def local_renderer():
    """The `client` fixture's renderer (a RendererRuntime in this process: engine, watcher)."""
    from service.gateway.service import API

    return API.state.core.renderer.renderer.runtime


@pytest.fixture()
def records(demo_home):
    """Read the service's audit record from the registry (as another process would): records where field == value."""
    from tests.audit_reading import find

    def read(field: str, value: str) -> list[dict]:
        return find(demo_home, field, value)

    return read


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pixel_distance(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two images' RGB pixels (0-255)."""
    import numpy as np

    first = np.asarray(open_image(a).convert("RGB"), dtype=np.float32)
    second = np.asarray(open_image(b).convert("RGB"), dtype=np.float32)
    if first.shape != second.shape:
        return float("inf")
    return float(np.abs(first - second).mean())


def same_picture(a: bytes, b: bytes) -> bool:
    """Same picture up to the invisible watermark (unique per image, so bytes always differ).

    The watermark moves pixels by about 2 levels on average; different twins or seeds by
    about 20 on the demo pipeline."""
    return pixel_distance(a, b) < 6.0


PG_ENV = "ATELIER_TEST_PG_URL"


def reset_pg(url: str) -> None:
    """Drop every table of the PostgreSQL test database, whatever revision made it (each test
    starts empty): the public schema goes and comes back."""
    from sqlalchemy import text

    from service.registry.db import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh registry database: SQLite, and PostgreSQL again when ATELIER_TEST_PG_URL is set."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set: PostgreSQL variant skipped ({request.node.module.__name__})")
    reset_pg(url)
    return url


@pytest.fixture(scope="session")
def served_demo(demo_home, demo_keys, tmp_path_factory):
    """One `bentoml serve` of a private copy of the demo home for the whole session, with small
    generation bounds (256 px, 2 steps) and the job worker on; shared by the tests that only
    read or add (the API contract, the docs page), so the ~30 s start is paid once."""
    from builds.serving import serve

    work = tmp_path_factory.mktemp("served-demo")
    home = work / "home"
    shutil.copytree(demo_home, home, ignore=shutil.ignore_patterns("cache", "registry.db*", "audit", "bentoml"))
    snapshot_registry(demo_home, home / "registry.db")
    env = {"ATELIER_CACHE_DIR": str(work / "cache"), "ATELIER_AUDIT_DIR": str(work / "audit"), "ATELIER_WARMUP": "0",
           "ATELIER_MAX_IMAGE_SIDE": "256", "ATELIER_MAX_STEPS": "2", "ATELIER_MAX_IMAGES": "2",
           "ATELIER_SOURCE_FAILURES_PER_MINUTE": "0", "ATELIER_RENDER_WAIT_S": "60", "ATELIER_JOB_POLL_MS": "100",
           "ATELIER_DEV_CALLBACKS": "1"}  # webhooks to a receiver on loopback
    server = serve(home, work, env=env)
    try:
        yield {"url": server.url, "server": server, "home": home, "work": work,
               "demo": demo_keys["ATELIER_DEMO_KEY"], "admin": demo_keys["ATELIER_ADMIN_KEY"]}
    finally:
        server.stop()


@pytest.fixture()
def queue(tmp_path):
    """A job queue of its own: a fresh SQLite registry with tenants brand-a and brand-b, and its
    `JobStore` (the dispatcher's tests lease from it without a gateway)."""
    from service.registry import JobStore, open_registry

    registry = open_registry(f"sqlite:///{tmp_path / 'queue.db'}")
    for tenant in ("brand-a", "brand-b"):
        registry.create_tenant(tenant, tenant)
    yield registry, JobStore(registry.engine)
    registry.engine.dispose()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where a browser test module saves its screenshots (ATELIER_STUDIO_SCREENSHOTS, or a
    temporary folder of this run)."""
    folder = Path(os.environ.get("ATELIER_STUDIO_SCREENSHOTS") or tmp_path_factory.mktemp("studio-screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"Studio screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium under Playwright, one per module (tests.studio_browser); skips with the
    reason when either is missing."""
    from tests.studio_browser import CHROMIUM, CHROMIUM_ARGS, browser_missing

    reason = browser_missing()
    if reason:
        print(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
