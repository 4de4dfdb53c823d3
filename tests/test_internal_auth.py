"""The renderer trusts only its gateways: a credential on every route, and a seal on every item.

Against a real renderer served alone (`start-http-server --service-name atelier-renderer`, as
on Knative or BentoCloud): a direct call without the internal credential, with a wrong one,
or with the right one but an item that is unsealed, forged, altered (another twin, tenant,
prompt or asset) or expired gets a 401 and no image, and a pickled body is never unpickled;
the probes stay open, and a sealed call still renders. Then the seal module on its own: what
it binds, where its token comes from, and the in-process path (the runtime checks seals too).
"""

from __future__ import annotations

import os
import pickle
import secrets
import shutil
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from builds.serving import RENDERER, serve_one
from service.admission_seal import InternalCredential, generated_token, load_token
from service.config import ConfigError, Settings
from service.errors import AdmissionRefused
from service.rendering import RenderBatch, RenderEdit, RenderItem, RenderLicence
from service.schemas import GenerateRequest
from tests.conftest import snapshot_registry

TTL_S = 300
REQUEST = {"twin_id": "demo-ava", "prompt": "linen dress, studio", "width": 256, "height": 256, "steps": 2}
REFUSED_LINE = '"event": "internal call refused"'


def item(tenant: str = "demo", edit: RenderEdit | None = None, licence: RenderLicence | None = None,
         **request) -> RenderItem:
    return RenderItem(generation_id=uuid.uuid4().hex, seed=7, tenant_id=tenant, edit=edit, licence=licence,
                      request=GenerateRequest.model_validate({**REQUEST, **request}))


def altered(sealed: RenderItem, tenant: str | None = None, edit: RenderEdit | None = None, **request) -> RenderItem:
    """The sealed item with fields changed after sealing, its seal kept."""
    changes: dict = {"request": sealed.request.model_copy(update=request)} if request else {}
    if tenant is not None:
        changes["tenant_id"] = tenant
    if edit is not None:
        changes["edit"] = edit
    return sealed.model_copy(update=changes)


def body(*items: RenderItem) -> bytes:
    return RenderBatch(items=list(items)).model_dump_json().encode()


# -- a renderer served alone ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def renderer(demo_home, tmp_path_factory):
    """A renderer process of its own on a copy of the demo home. The internal token is the one
    generated into that home (nothing configured): the one a gateway on the same home uses."""
    work = tmp_path_factory.mktemp("internal-auth")
    home = work / "home"
    shutil.copytree(demo_home, home, ignore=shutil.ignore_patterns("cache", "registry.db*", "audit", "bentoml", "keys"))
    shutil.copytree(demo_home / "keys", home / "keys", ignore=shutil.ignore_patterns("internal_token"))
    snapshot_registry(demo_home, home / "registry.db")
    served = serve_one(RENDERER, home, work / "served", env={"ATELIER_CACHE_DIR": str(work / "cache")},
                       ready_timeout=300)
    served.home = home  # type: ignore[attr-defined]
    served.credential = InternalCredential(load_token(Settings.from_env({"ATELIER_HOME": str(home)})))  # type: ignore[attr-defined]
    try:
        yield served
    finally:
        served.stop()


def post(renderer, path: str, content: bytes, authorization: str | None = None, **headers) -> httpx.Response:
    headers = {"Content-Type": "application/json", **headers}
    if authorization is not None:
        headers["Authorization"] = authorization
    return httpx.post(renderer.url + path, content=content, headers=headers, timeout=300)


def assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 401, response.text[:500]
    assert response.json()["error"]["code"] == code
    assert "data_base64" not in response.text


@pytest.mark.slow
def test_a_direct_call_without_the_gateways_credential_gets_no_image(renderer):
    sealed = body(renderer.credential.sealed(item(), ttl_s=TTL_S))  # even a validly sealed batch
    wrong = InternalCredential(secrets.token_urlsafe(32)).authorization()
    right = renderer.credential.authorization()
    for path, content in (("/internal/render", sealed), ("/internal/render_stream", sealed),
                          ("/internal/cache", b"{}"), ("/internal/evict", b'{"twin_id": "demo-ava"}'),
                          ("/internal/prefetch", b'{"twin_ids": ["demo-ava"]}')):
        assert_refused(post(renderer, path, content), "unauthorized")
        for authorization in (wrong, "Basic " + right.split()[1], right + "x", right[:-1], right.split()[1]):
            assert_refused(post(renderer, path, content, authorization), "unauthorized")
    assert httpx.get(renderer.url + "/docs.json", timeout=30).status_code == 401  # not even the schema
    # Two Authorization headers (one right, one wrong) are refused, whichever a parser would take.
    response = httpx.post(renderer.url + "/internal/render", content=sealed, timeout=60,
                          headers=[("Content-Type", "application/json"), ("Authorization", wrong),
                                   ("Authorization", right)])
    assert_refused(response, "unauthorized")
    # The probes stay open: the platform checks them without any credential.
    for probe in ("/readyz", "/livez"):
        assert httpx.get(renderer.url + probe, timeout=30).status_code == 200


@pytest.mark.slow
def test_a_credential_alone_renders_nothing_without_a_valid_seal_on_every_item(renderer):
    credential, authorization = renderer.credential, renderer.credential.authorization()
    forger = InternalCredential(secrets.token_urlsafe(32))
    good = credential.sealed(item(), ttl_s=TTL_S)
    asset = secrets.token_hex(32)
    with_garment = credential.sealed(item(garments=[{"asset_id": asset, "category": "tops"}]), ttl_s=TTL_S)
    other_asset = with_garment.request.garments[0].model_copy(update={"asset_id": secrets.token_hex(32)})
    edit = RenderEdit(source_asset_id=secrets.token_hex(32), mask_asset_id=secrets.token_hex(32))
    with_edit = credential.sealed(item(edit=edit), ttl_s=TTL_S)
    cases = {
        "unsigned": item(),
        "forged": forger.sealed(item(), ttl_s=TTL_S),
        "made-up seal": good.model_copy(update={"seal": "v1.9999999999." + "A" * 43}),
        "other twin": altered(good, twin_id="demo-ben"),
        "other tenant": altered(good, tenant="other-brand"),
        "other prompt": altered(good, prompt="something the policy refuses"),
        "other seed": good.model_copy(update={"seed": 8}),
        "other garment asset": altered(with_garment, garments=[other_asset]),
        "garment added": altered(good, garments=[with_garment.request.garments[0]]),
        "other edit source": altered(with_edit, edit=edit.model_copy(update={"source_asset_id": secrets.token_hex(32)})),
        "edit added": altered(good, edit=edit),
        "expired": credential.sealed(item(), ttl_s=TTL_S, now=time.time() - TTL_S - 1),
        "expiry extended": good.model_copy(update={"seal": good.seal.replace(good.seal.split(".")[1], "9999999999")}),
    }
    for name, bad in cases.items():
        for path in ("/internal/render", "/internal/render_stream"):
            response = post(renderer, path, body(bad), authorization)
            assert response.status_code == 401, (name, path, response.text[:300])
            assert response.json()["error"]["code"] == "invalid_admission", name
            assert "data_base64" not in response.text, name
    # One bad item refuses the whole call: the good one beside it is not rendered either.
    assert_refused(post(renderer, "/internal/render", body(good, cases["other twin"]), authorization), "invalid_admission")
    # Every refusal was logged, as JSON lines that never hold the token.
    log = renderer.log_path.read_text(errors="replace")
    assert log.count(REFUSED_LINE) >= 2 * len(cases)
    assert authorization.split()[1] not in log


@pytest.mark.slow
def test_a_pickled_body_is_never_unpickled(renderer, tmp_path):
    """BentoML unpickles `application/vnd.bentoml+pickle` bodies sent to a service that is not the
    bento's entry service, which the renderer is wherever it runs apart (Knative, BentoCloud)."""
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(marker),)

    data = pickle.dumps(Payload(), protocol=5)
    pickled = {"Content-Type": "application/vnd.bentoml+pickle"}
    anonymous = post(renderer, "/internal/render", data, **pickled)
    assert not marker.exists(), "the renderer unpickled an anonymous caller's body"
    assert_refused(anonymous, "unauthorized")
    # Not even from a holder of the credential: the gateway sends JSON only.
    for path in ("/internal/render", "/internal/evict"):
        response = post(renderer, path, data, renderer.credential.authorization(), **pickled)
        assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"
    assert not marker.exists()


@pytest.mark.slow
def test_a_call_from_the_gateway_with_sealed_items_still_renders(renderer):
    from service.gateway.render_client import HttpRenderClient

    client = HttpRenderClient(renderer.url, credential=renderer.credential)  # as the gateway calls it
    try:
        batch = RenderBatch(items=[renderer.credential.sealed(item(), ttl_s=TTL_S)])
        result = client.render(batch, wait_s=60)
        steps: list[int] = []
        streamed = client.render_streaming(batch, wait_s=60, on_progress=lambda step, total: steps.append(step))
        assert client.evict("demo-ava", wait_s=60).twin_id == "demo-ava"
    finally:
        client.close()
    for rendered in (result, streamed):
        [outcome] = rendered.outcomes
        assert outcome.error is None and len(outcome.images) == 1 and outcome.images[0].watermark_id
    assert steps and steps[-1] >= 2
    # The gateway's client without the credential is refused (and says so in its log), not retried.
    from service.errors import AtelierError

    bare = HttpRenderClient(renderer.url)
    try:
        with pytest.raises(AtelierError) as refused:
            bare.render(batch, wait_s=60)
    finally:
        bare.close()
    assert "HTTP 401" in refused.value.message


# -- the seal itself -----------------------------------------------------------------------------


@pytest.fixture()
def credential() -> InternalCredential:
    return InternalCredential(secrets.token_urlsafe(32))


def wire(sealed: RenderItem) -> RenderItem:
    """The item as a renderer parses it off the wire."""
    [parsed] = RenderBatch.model_validate_json(body(sealed)).items
    return parsed


def test_a_seal_survives_the_wire_for_every_kind_of_request(credential):
    garments = [{"asset_id": secrets.token_hex(32), "category": "tops", "strength": 0.5},
                {"asset_id": secrets.token_hex(32), "category": "shoes"}]
    for request in ({}, {"guidance_scale": 7, "negative_prompt": "é ✓ \u2028"}, {"garments": garments},
                    {"pose": {"keypoints": [[0.1, 0.25]] * 17 + [None], "scale": 0.5}},
                    {"pose": {"preset": "walking"}}, {"pose": {"asset_id": secrets.token_hex(32)}}):
        credential.verify(wire(credential.sealed(item(**request), ttl_s=TTL_S)))
    edit = RenderEdit(source_asset_id=secrets.token_hex(32), mask_asset_id=secrets.token_hex(32), invert=True,
                      source_generation_id=uuid.uuid4().hex)
    credential.verify(wire(credential.sealed(item(edit=edit), ttl_s=TTL_S)))
    credential.verify(wire(credential.sealed(item(twin_id=None, tenant=None), ttl_s=TTL_S)))  # base model, admin
    for licence in (RenderLicence(basis="signed", licence_id="lic_" + secrets.token_hex(12),
                                  licence_sha256=secrets.token_hex(32)),
                    RenderLicence(basis="paper", consent_id=12, consent_version=3)):
        credential.verify(wire(credential.sealed(item(licence=licence), ttl_s=TTL_S)))


def test_the_seal_binds_the_licence_the_manifests_will_name(credential):
    """A caller holding the internal token cannot swap what licensed an item: its images'
    manifests name the licence the gateway admitted it under, or the item is refused."""
    signed = RenderLicence(basis="signed", licence_id="lic_" + secrets.token_hex(12), licence_sha256=secrets.token_hex(32))
    good = credential.sealed(item(licence=signed), ttl_s=TTL_S)
    credential.verify(good)
    for licence in (None, signed.model_copy(update={"licence_id": "lic_" + secrets.token_hex(12)}),
                    signed.model_copy(update={"licence_sha256": secrets.token_hex(32)}),
                    RenderLicence(basis="paper", consent_id=1, consent_version=1)):
        with pytest.raises(AdmissionRefused, match="does not match") as refused:
            credential.verify(good.model_copy(update={"licence": licence}))
        assert refused.value.code == "invalid_admission", licence
    paper = credential.sealed(item(licence=RenderLicence(basis="paper", consent_id=4, consent_version=2)), ttl_s=TTL_S)
    for licence in (None, signed, RenderLicence(basis="paper", consent_id=4, consent_version=3)):
        with pytest.raises(AdmissionRefused, match="does not match"):
            credential.verify(paper.model_copy(update={"licence": licence}))
    bare = credential.sealed(item(), ttl_s=TTL_S)  # none named: one cannot be added either
    with pytest.raises(AdmissionRefused, match="does not match"):
        credential.verify(bare.model_copy(update={"licence": signed}))
    with pytest.raises(ValueError):  # and the wire takes only one of the two forms
        RenderLicence(basis="signed", licence_id="lic_1", licence_sha256=secrets.token_hex(32), consent_id=1)


def test_the_seal_binds_every_part_of_the_item(credential):
    edit = RenderEdit(source_asset_id=secrets.token_hex(32), mask_asset_id=secrets.token_hex(32))
    good = credential.sealed(item(edit=edit, garments=[{"asset_id": secrets.token_hex(32), "category": "tops"}],
                                  pose={"asset_id": secrets.token_hex(32)}), ttl_s=TTL_S)
    credential.verify(good)
    changes = [
        {"generation_id": uuid.uuid4().hex}, {"seed": 8}, {"tenant_id": "other"}, {"tenant_id": None},
        {"edit": None}, {"edit": edit.model_copy(update={"mask_asset_id": secrets.token_hex(32)})},
        {"edit": edit.model_copy(update={"invert": True})},
        {"edit": edit.model_copy(update={"source_generation_id": uuid.uuid4().hex})},
    ]
    request = good.request
    for update in ({"twin_id": "demo-ben"}, {"twin_id": None}, {"prompt": "other"}, {"negative_prompt": "x"},
                   {"width": 512}, {"steps": 50}, {"num_images": 4}, {"use": "social_ads"}, {"territory": "FR"},
                   {"garments": []}, {"garments": [request.garments[0].model_copy(update={"category": "lingerie"})]},
                   {"garments": [request.garments[0].model_copy(update={"asset_id": secrets.token_hex(32)})]},
                   {"pose": request.pose.model_copy(update={"asset_id": secrets.token_hex(32)})}, {"pose": None}):
        changes.append({"request": request.model_copy(update=update)})
    for change in changes:
        with pytest.raises(AdmissionRefused) as refused:
            credential.verify(good.model_copy(update=change))
        assert refused.value.status == 401 and refused.value.code == "invalid_admission", change


def test_unsigned_malformed_forged_and_expired_seals_are_refused(credential):
    now = time.time()
    good = credential.sealed(item(), ttl_s=TTL_S, now=now)
    credential.verify(good, now=now + TTL_S - 1)
    version, expires, mac = good.seal.split(".")
    for seal in (None, "", "v1", "v2." + expires + "." + mac, f"v1.{expires}.{mac}=", f"v1.{int(expires) + 1}.{mac}",
                 f"v1.-{expires}.{mac}", f"v1.{expires}.{mac[:-1]}", f"v1. {expires}.{mac}", good.seal + "\n"):
        with pytest.raises(AdmissionRefused):
            credential.verify(good.model_copy(update={"seal": seal}), now=now)
    with pytest.raises(AdmissionRefused, match="expired"):
        credential.verify(good, now=now + TTL_S)
    with pytest.raises(AdmissionRefused, match="does not match"):
        InternalCredential(secrets.token_urlsafe(32)).verify(good, now=now)  # another deployment's seal
    with pytest.raises(AdmissionRefused):  # one bad item of several refuses them all
        credential.verify_all([good, item()], now=now)


def test_the_bearer_check_takes_only_the_exact_token(credential):
    header = credential.authorization()
    token = header.split(" ", 1)[1]
    assert credential.accepts(header) and credential.accepts(header.encode()) and credential.accepts("bearer " + token)
    for other in (None, "", "Bearer", "Bearer ", token, "Basic " + token, header + "a", header[:-1], "Bearer  x" + token,
                  "Bearer " + token.upper() if token.upper() != token else "Bearer -",
                  InternalCredential(secrets.token_urlsafe(32)).authorization()):
        assert not credential.accepts(other), other
    assert token not in repr(credential) and token not in str(credential)


def test_the_token_comes_from_the_setting_the_file_or_one_generated_once(tmp_path):
    token = secrets.token_urlsafe(32)
    assert load_token(Settings.from_env({"ATELIER_HOME": str(tmp_path), "ATELIER_INTERNAL_TOKEN": token})) == token
    mounted = tmp_path / "mounted"
    mounted.write_text(token + "\n")
    assert load_token(Settings.from_env({"ATELIER_HOME": str(tmp_path), "ATELIER_INTERNAL_TOKEN_FILE": str(mounted)})) == token
    for env in ({"ATELIER_INTERNAL_TOKEN": "short"}, {"ATELIER_INTERNAL_TOKEN": token, "ATELIER_INTERNAL_TOKEN_FILE": str(mounted)}):
        with pytest.raises(ConfigError):
            Settings.from_env({"ATELIER_HOME": str(tmp_path), **env})
    missing = Settings.from_env({"ATELIER_HOME": str(tmp_path), "ATELIER_INTERNAL_TOKEN_FILE": str(tmp_path / "absent")})
    with pytest.raises(ConfigError):  # a secret that failed to mount is an error, never a generated token
        load_token(missing)
    assert not (tmp_path / "keys").exists()
    assert token not in repr(Settings.from_env({"ATELIER_INTERNAL_TOKEN": token}))
    # Nothing configured: generated once, private, and the same on every later load.
    settings = Settings.from_env({"ATELIER_HOME": str(tmp_path / "home")})
    first = load_token(settings)
    path = tmp_path / "home" / "keys" / "internal_token"
    assert len(first) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_token(settings) == first and generated_token(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["internal_token"]  # no candidate left behind


def test_processes_starting_together_generate_one_token(tmp_path):
    """`bentoml serve` starts the gateway and the renderer workers at once on one home."""
    path = tmp_path / "keys" / "internal_token"
    code = ("import sys, time; from pathlib import Path; from service.admission_seal import generated_token; "
            "time.sleep(float(sys.argv[2]) - time.time()); print(generated_token(Path(sys.argv[1])))")
    start = str(time.time() + 2.0)
    processes = [subprocess.Popen([sys.executable, "-c", code, str(path), start], stdout=subprocess.PIPE, text=True,
                                  cwd=Path(__file__).resolve().parent.parent) for _ in range(6)]
    tokens = {process.communicate(timeout=60)[0].strip() for process in processes}
    assert len(tokens) == 1 and tokens == {path.read_text().strip()}
    assert sorted(p.name for p in path.parent.iterdir()) == ["internal_token"]


# -- the in-process path: the runtime checks seals itself ----------------------------------------


class Untouchable:
    """Stands in for the engine: any use of it is GPU work that must not happen."""

    def __getattr__(self, name):
        raise AssertionError(f"the engine was used ({name}) for a call that should have been refused")


def test_the_runtime_refuses_unsealed_items_before_any_gpu_work(demo_home, tmp_path):
    """What the in-process LocalRenderClient reaches: no HTTP door, the same refusal."""
    from service.gateway.render_client import LocalRenderClient
    from service.renderer.runtime import RendererRuntime

    settings = Settings.from_env({"ATELIER_HOME": str(tmp_path), "ATELIER_INTERNAL_TOKEN": secrets.token_urlsafe(32)})
    runtime = RendererRuntime(settings, registry=None, engine=Untouchable(), watcher=None)  # type: ignore[arg-type]
    client = LocalRenderClient(runtime)
    credential = InternalCredential.from_settings(settings)
    good = credential.sealed(item(), ttl_s=TTL_S)
    for bad in (item(), InternalCredential(secrets.token_urlsafe(32)).sealed(item(), ttl_s=TTL_S),
                altered(good, twin_id="demo-ben"), altered(good, tenant="other"),
                credential.sealed(item(), ttl_s=TTL_S, now=time.time() - 2 * TTL_S)):
        batch = RenderBatch(items=[good, bad])
        with pytest.raises(AdmissionRefused):
            client.render(batch, wait_s=1)
        with pytest.raises(AdmissionRefused):
            client.render_streaming(batch, wait_s=1, on_progress=lambda step, steps: None)
