"""Limits that cannot be turned against everyone, fetches that cannot starve the gateway, and
Studio behind TLS: the smaller side doors of issue 25, replayed against real components.

- A source's failed-authentication budget refuses only requests without a valid key: a valid
  key is served from a source an attacker has exhausted (checked in memory: forged keys cost
  no query), Studio sign-in failures spend the same budget and are recorded compactly, and
  every shipped manifest names its proxies (tests/test_infra_manifests.py).
- Asset URL fetches have one deadline, headers included (a real server trickling header lines),
  and a small pool of their own: slow URLs from one key leave the synchronous routes answering
  (a real uvicorn server).
- Studio believes `X-Forwarded-Proto` from trusted proxies only (Secure cookies, HSTS), and a
  sign-in CSRF token is the HMAC of its own form's cookie.
"""

from __future__ import annotations

import functools

import re
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from starlette.routing import Mount
from starlette.testclient import TestClient

from tests.trickle_server import TrickleServer
from tests.trust_support import audit_bytes, audit_records, build_world, freeze_minute
from tests.polling import wait_for as poll

PROXY = "10.0.0.7"  # inside ATELIER_TRUSTED_PROXIES below
STRANGER = "203.0.113.9"


wait_for = functools.partial(poll, timeout=60.0, every=0.05)


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


@pytest.fixture()
def trickle():
    server = TrickleServer()
    yield server
    server.close()


# -- bounded fetches (no gateway needed) ------------------------------------------------------


def test_trickling_headers_are_cut_at_the_total_deadline(trickle):
    """A header line every 0.3 s never trips a per-read timeout; the whole fetch still ends at 2 s."""
    from service.assets import FetchFailed, fetch_url

    outcome: list[BaseException] = []

    def fetch():
        try:
            fetch_url(trickle.url + "/slow/header-drip", max_bytes=1 << 20, allow_private=True, timeout_s=2)
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            outcome.append(exc)

    worker = threading.Thread(target=fetch, daemon=True)
    worker.start()
    worker.join(timeout=90)  # the server trickles for 120 s: a fetch without a total deadline is still reading
    assert not worker.is_alive(), "the fetch outlived its deadline while headers trickled in"
    [exc] = outcome
    assert isinstance(exc, FetchFailed) and exc.status == 422 and "took longer than 2 s" in exc.message, exc
    wait_for(lambda: trickle.hung_up_at)
    assert 0 < trickle.hung_up_at[0] < trickle.max_lines  # the client left mid-headers, not the server


def test_a_fetch_still_reads_a_whole_image_and_keeps_its_guards(trickle):
    from service.assets import FetchFailed, UrlRefused, fetch_url

    assert fetch_url(trickle.url + "/fast/ok.png", max_bytes=1 << 20, allow_private=True) == trickle.body
    with pytest.raises(Exception) as big:
        fetch_url(trickle.url + "/fast/big.png", max_bytes=100, allow_private=True)
    assert getattr(big.value, "code", None) == "payload_too_large"
    with pytest.raises(UrlRefused):  # loopback without development callbacks: refused before connecting
        fetch_url(trickle.url + "/fast/ssrf.png", max_bytes=1 << 20)
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(FetchFailed):
        fetch_url(f"http://127.0.0.1:{port}/nothing", max_bytes=1 << 20, allow_private=True, timeout_s=5)
    assert not any(p.startswith("/fast/ssrf") for p in trickle.paths)


def test_the_fetch_pool_refuses_what_it_cannot_run_at_once_and_patient_work_waits(trickle):
    from service.assets import FetchBusy, FetchPool, TooManyFetches, patient_fetches

    pool = FetchPool(workers=2, per_owner=1, timeout_s=60)
    results: dict[str, object] = {}

    def fetch(name: str, owner: str, path: str, patient: bool = False):
        def run():
            try:
                if patient:
                    with patient_fetches(wait_s=60):
                        results[name] = pool.fetch(owner, trickle.url + path, max_bytes=1 << 20, allow_private=True)
                else:
                    results[name] = pool.fetch(owner, trickle.url + path, max_bytes=1 << 20, allow_private=True)
            except Exception as exc:  # noqa: BLE001 - the test reads it
                results[name] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    first = fetch("a1", "tenant-a", "/slow/a1")
    wait_for(lambda: trickle.open == 1)
    with pytest.raises(TooManyFetches) as over_share:  # tenant a's share is one fetch
        pool.fetch("tenant-a", trickle.url + "/fast/a2", max_bytes=1 << 20, allow_private=True)
    assert over_share.value.status == 429 and over_share.value.response_headers()["Retry-After"]
    second = fetch("b1", "tenant-b", "/slow/b1")
    wait_for(lambda: trickle.open == 2)
    with pytest.raises(FetchBusy) as busy:  # both slots taken: refused at once, not queued
        pool.fetch("tenant-c", trickle.url + "/fast/c1", max_bytes=1 << 20, allow_private=True)
    assert (busy.value.status, busy.value.code) == (503, "fetch_busy") and busy.value.response_headers()["Retry-After"]
    patient = fetch("c2", "tenant-c", "/fast/c2", patient=True)  # background work waits for a slot instead
    time.sleep(0.5)
    assert "c2" not in results and "/fast/c2" not in trickle.paths and pool.running == 2
    trickle.release.set()
    for thread in (first, second, patient):
        thread.join(timeout=60)
    assert results == {"a1": trickle.body, "b1": trickle.body, "c2": trickle.body}
    assert pool.running == 0
    pool.close()


# -- a whole gateway ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(demo_home, tmp_path_factory):
    from service.studio import build_studio

    world = build_world(demo_home, tmp_path_factory.mktemp("side-doors"), env={
        "ATELIER_TRUSTED_PROXIES": "10.0.0.0/8",
        "ATELIER_DEV_CALLBACKS": "1",  # asset URLs may be http://127.0.0.1 (the trickling server)
        "ATELIER_FETCH_TIMEOUT_S": "90",  # the slow fetches below are still running when the read is made
        "ATELIER_FETCH_CONCURRENCY": "8",
        "ATELIER_FETCH_CONCURRENCY_PER_TENANT": "4",
    })
    studio = build_studio()  # mounted as the Gateway mounts it, behind the same edge
    studio.state.core = world.core
    world.app.app.routes.append(Mount("/studio", app=studio))
    world.core.trust.refusals.known_routes |= {"/studio/login"}
    yield world
    world.close()


@pytest.fixture()
def frozen_minute(world, monkeypatch):
    freeze_minute(world, monkeypatch)


def spend_budget(world, source: str) -> None:
    keyless = world.client(key=None, source=source)
    budget = world.settings.source_failures_per_minute
    codes = Counter(keyless.get("/v1/usage").status_code for _ in range(budget + 1))
    assert codes == {401: budget, 429: 1}, codes


def test_a_valid_key_is_served_from_a_source_whose_failure_budget_is_spent(world, frozen_minute):
    source = "198.51.100.21"
    spend_budget(world, source)
    registry = world.core.registry
    key_id, fresh = registry.create_api_key("demo", ["generate"], requests_per_minute=1000)
    world.core.trust.keys.refresh()  # the poll would see the new key within ATELIER_REGISTRY_POLL_MS

    admin = world.client("admin", source=source).get("/v1/admin/twins/list")
    assert admin.status_code == 200, admin.text
    minted = world.client(None, source=source).get("/v1/assets/" + "0" * 64, headers={"Authorization": f"Bearer {fresh}"})
    assert error(minted) == (404, "asset_not_found")  # served: the route ran for this key

    admin_id = world.keys["admin"].split("_")[1]
    for token in (None, f"atl_{admin_id}_{'x' * 43}", "atl_0123456789ab_" + "y" * 43, "atl_nonsense", "Basic abc",
                  world.keys["admin"][:-1] + ("A" if world.keys["admin"][-1] != "A" else "B")):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        refused = world.client(None, source=source).get("/v1/admin/twins/list", headers=headers)
        assert error(refused) == (429, "too_many_auth_failures"), token

    registry.revoke_key(key_id)
    world.core.trust.keys.refresh()
    revoked = world.client(None, source=source).get("/v1/assets/" + "0" * 64, headers={"Authorization": f"Bearer {fresh}"})
    assert error(revoked) == (429, "too_many_auth_failures")
    assert world.client(key=None, source="198.51.100.22").get("/v1/usage").status_code == 401  # others unaffected


def test_the_request_budget_too_holds_back_only_requests_without_a_valid_key(world):
    from service.tenancy.preauth import SourceGuard, SourceLimited

    guard = SourceGuard(requests_per_minute=3, failures_per_minute=0, clock=lambda: 90.0)
    for _ in range(3):
        guard.admit("198.51.100.40")
    with pytest.raises(SourceLimited):
        guard.admit("198.51.100.40", vouch=lambda: False)
    guard.admit("198.51.100.40", vouch=lambda: True)  # a valid key: its own per-key limits apply
    assert world.core.trust.vouch(world.keys["demo"]) and not world.core.trust.vouch(world.keys["demo"] + "x")


def login_form(client) -> str:
    page = client.get("/studio/login")
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def test_studio_sign_in_failures_spend_the_source_budget_and_are_audited_compactly(world, frozen_minute):
    source = "198.51.100.23"
    browser = TestClient(world.app, client=(source, 40000), raise_server_exceptions=False)
    before = audit_bytes(world)
    statuses = Counter()
    wrong = world.keys["demo"][:-2] + "zz"
    for _ in range(40):
        token = login_form(browser)
        statuses[browser.post("/studio/login", data={"api_key": wrong, "csrf_token": token}).status_code] += 1
    budget = world.settings.source_failures_per_minute
    assert statuses == {401: budget, 429: 40 - budget}, statuses
    grown = audit_bytes(world) - before
    assert grown < 1200, grown  # two compact records (one per kind), not 40 full ones
    assert audit_records(world, event="studio.sign_in", client_ip=source) == []
    firsts = audit_records(world, event="refused_at_edge", client_ip=source)
    assert sorted((r["route"], r["reason"], r["status"]) for r in firsts) == [
        ("/studio/login", "invalid_api_key", 401), ("/studio/login", "too_many_auth_failures", 429)], firsts
    assert world.client(None, source=source).get("/v1/usage").status_code == 429  # the same budget as the API's

    signed = browser.post("/studio/login", data={"api_key": world.keys["demo"], "csrf_token": login_form(browser)},
                          follow_redirects=False)
    assert signed.status_code == 303  # a valid key still signs in from that source
    assert world.client("demo", source=source).get("/v1/assets/" + "0" * 64).status_code == 404
    world.core.trust.refusals.flush(everything=True)
    [summary] = audit_records(world, event="refused_unauthenticated", client_ip=source)
    assert summary["counts"] == {"401 invalid_api_key /studio/login": budget,
                                 "429 too_many_auth_failures /studio/login": 40 - budget,
                                 "429 too_many_auth_failures /v1/usage": 1}, summary


def test_a_sign_in_csrf_token_is_bound_to_its_own_forms_cookie(world):
    from service.studio.security import LOGIN_CSRF_COOKIE

    first = TestClient(world.app, client=("198.51.100.24", 1), raise_server_exceptions=False)
    second = TestClient(world.app, client=("198.51.100.24", 2), raise_server_exceptions=False)
    token_a, token_b = login_form(first), login_form(second)
    cookie_a = first.cookies.get(LOGIN_CSRF_COOKIE)
    assert cookie_a and cookie_a != token_a  # the token is the cookie's HMAC, not a copy of it

    key = world.keys["demo"]
    crossed = first.post("/studio/login", data={"api_key": key, "csrf_token": token_b}, follow_redirects=False)
    assert crossed.status_code == 403 and "csrf_failed" in crossed.text  # another form's token
    for forged in ("made-up-by-the-attacker", token_a):  # a cookie tossed in to equal the token
        attacker = TestClient(world.app, client=("198.51.100.24", 3), raise_server_exceptions=False)
        attacker.cookies.set(LOGIN_CSRF_COOKIE, forged, path="/studio")
        refused = attacker.post("/studio/login", data={"api_key": key, "csrf_token": forged}, follow_redirects=False)
        assert refused.status_code == 403 and "csrf_failed" in refused.text, forged
    own = first.post("/studio/login", data={"api_key": key, "csrf_token": token_a}, follow_redirects=False)
    assert own.status_code == 303


def test_a_sign_in_csrf_pair_expires_and_needs_the_servers_secret():
    from service.errors import Forbidden
    from service.studio.security import check_login_csrf, new_login_csrf

    secret, other = b"s" * 32, b"t" * 32
    cookie, token = new_login_csrf(secret, now=1_000_000)
    check_login_csrf(secret, cookie, token, now=1_000_000 + 3599)
    for args in ((secret, cookie, token, 1_000_000 + 3601), (other, cookie, token, 1_000_001),
                 (secret, cookie + "x", token, 1_000_001), (secret, None, token, 1_000_001)):
        with pytest.raises(Forbidden):
            check_login_csrf(*args[:3], now=args[3])


@pytest.mark.parametrize("peer, proto, base_url, secure", [
    (STRANGER, "https", "http://testserver", False),  # anyone can write the header: ignored
    (PROXY, "https", "http://testserver", True),  # TLS ended at a trusted proxy
    (PROXY, "http", "http://testserver", False),
    (PROXY, "https, http", "http://testserver", False),  # the nearest proxy's word is the last
    (STRANGER, None, "https://testserver", True),  # direct TLS
])
def test_secure_cookies_and_hsts_follow_https_as_a_trusted_proxy_reports_it(world, peer, proto, base_url, secure):
    client = TestClient(world.app, base_url=base_url, client=(peer, 5000), raise_server_exceptions=False)
    headers = {"X-Forwarded-Proto": proto} if proto else {}
    page = client.get("/studio/login", headers=headers)
    assert page.status_code == 200
    cookie = page.headers["set-cookie"]
    assert ("; secure" in cookie.lower()) is secure, cookie
    assert ("strict-transport-security" in page.headers) is secure
    if secure:
        assert re.fullmatch(r"max-age=\d{8,}", page.headers["strict-transport-security"])
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        cookie_pair = cookie.split(";", 1)[0]  # the test client keeps a Secure cookie off plain http
        signed = client.post("/studio/login", headers={**headers, "Cookie": cookie_pair}, follow_redirects=False,
                             data={"api_key": world.keys["demo"], "csrf_token": token})
        assert signed.status_code == 303 and "; secure" in signed.headers["set-cookie"].lower()


def test_slow_urls_from_one_key_do_not_starve_a_synchronous_route(world, trickle):
    """48 asset URLs that never finish their headers, from one key, at once: at most the
    tenant's share of fetch slots is taken, the rest are refused at once, and a synchronous
    route still answers while the slow fetches run. (Before: the fetches held every thread of
    the server's pool, and the read waited behind them.)"""
    import uvicorn

    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(world.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started)
    base = f"http://127.0.0.1:{port}"
    # A key whose own limits allow it all (an operator's generous key, or an attacker's stolen one).
    _, token = world.core.registry.create_api_key("demo", ["generate"], requests_per_minute=10_000,
                                                  max_concurrent_jobs=100)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as http, ThreadPoolExecutor(48) as pool:
            posts = [pool.submit(http.post, "/v1/assets", json={"kind": "garment", "url": f"{trickle.url}/slow/{i}"})
                     for i in range(48)]
            refused = wait_for(lambda: [f for f in posts if f.done()] if sum(f.done() for f in posts) >= 44 else None)
            assert trickle.open == 4  # the tenant's share of the fetch slots, still trickling
            read = http.get("/v1/assets/" + "0" * 64, timeout=60)
            assert error(read) == (404, "asset_not_found")  # a synchronous route answered meanwhile
            assert trickle.open == 4 and trickle.finished == 0  # ...while the slow fetches still ran
            assert Counter(error(f.result()) for f in refused) == {(429, "too_many_fetches"): 44}
            trickle.release.set()
            finished = [f.result() for f in posts if f not in refused]
            assert [r.status_code for r in finished] == [201] * 4
    finally:
        server.should_exit = True
        thread.join(timeout=30)
