"""Likeness, not bytes: near copies of an adapter are refused at registration and revoked with
their source; different adapters pass; an admin may attach a twin to the same person."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from bench.likeness import copies, random_like, read, write
from service.errors import AtelierError, Forbidden
from service.registry import open_registry
from service.registry.likeness import likeness_group
from service.twins import LocalAdapterStore, TwinCatalog
from service.twins.admin import register_twin, revoke_twin
from service.twins.likeness import DIM, THRESHOLD, distance, ensure_fingerprints, fingerprint_adapter

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
# Every copy kind bench/likeness.py measures within the threshold (docs/BENCHMARKS.md).
COPY_KINDS = ["metadata", "noise_1e-6", "noise_0.3x_weights_std", "float16", "refactor_BQ_QinvA", "peft_layout",
              "svd_rank_2", "svd_rank_1", "svd_rank_same_fp16", "scaled_alpha_x0.5", "scaled_B_x2", "one_layer_x4",
              "partial_one_layer_dropped", "partial_half_layers_dropped"]


def template() -> dict[str, np.ndarray]:
    """The keys and shapes of a small diffusers-format UNet LoRA (16 attention layers, rank 4)."""
    tensors = {}
    for block in range(2):
        for attn in ("attn1", "attn2"):
            for target in TARGETS:
                key = f"unet.down_blocks.{block}.attentions.0.transformer_blocks.0.{attn}.{target}"
                tensors[f"{key}.lora_A.weight"] = np.zeros((4, 64), np.float32)
                tensors[f"{key}.lora_B.weight"] = np.zeros((64, 4), np.float32)
    return tensors


def adapter(seed: int) -> bytes:
    return write(random_like(template(), seed), {"format": "pt"})


class Twins:
    """A fresh registry and adapter store, with the gateway's registration and revocation."""

    def __init__(self, root: Path):
        self.registry = open_registry(f"sqlite:///{root / 'registry.db'}")
        self.store = LocalAdapterStore(root / "adapters")
        self.catalog = TwinCatalog(self.registry)

    def register(self, twin_id: str, data: bytes, **kwargs):
        return register_twin(self.catalog, self.store, 32, TARGETS, twin_id, None, data, **kwargs)[0]

    def revoke(self, twin_id: str):
        return revoke_twin(self.registry, self.store, twin_id)

    def serving(self, twin_id: str) -> bool:
        """Would a generation for this twin start? (the catalogue refuses revoked twins: 403 revoked)"""
        try:
            self.catalog.get(twin_id)
            return True
        except Forbidden as exc:
            assert exc.code == "revoked"
            return False

    def legacy(self, twin_id: str, data: bytes) -> None:
        """A twin registered before fingerprints existed (an older database, the demo build)."""
        key = f"{twin_id}/legacy.safetensors"
        self.store.write_bytes(key, data)
        self.registry.put_twin(twin_id, display_name=twin_id, adapter_key=key,
                               adapter_sha256=hashlib.sha256(data).hexdigest(), rank=4)


@pytest.fixture()
def twins(tmp_path) -> Twins:
    return Twins(tmp_path)


def refused(call, code: str) -> AtelierError:
    with pytest.raises(AtelierError) as info:
        call()
    assert info.value.code == code, info.value.message
    return info.value


@pytest.mark.parametrize("kind", COPY_KINDS)
def test_a_near_copy_is_refused_at_registration_and_leaves_nothing(twins, kind):
    source = adapter(1)
    twins.register("ava", source)
    copy = copies(source, seed=3)[kind]
    assert copy != source
    error = refused(lambda: twins.register("mallory", copy), "likeness_in_use")
    assert error.status == 409 and error.field == "adapter" and "'ava'" in error.message
    assert twins.registry.get_twin("mallory", include_deleted=True) is None
    assert not (twins.store.root / "mallory").exists()


@pytest.mark.parametrize("kind", COPY_KINDS)
def test_a_copy_registered_before_fingerprints_stops_with_its_source(twins, kind):
    """A copy already in the registry (registered before 0006) is fingerprinted lazily and
    revoked with its source: it stops generating."""
    source = adapter(1)
    twins.register("ava", source)
    twins.legacy("mallory", copies(source, seed=4)[kind])
    twins.legacy("ben", adapter(2))  # a different person, registered the same way
    assert twins.serving("mallory")
    twins.revoke("ava")
    assert not twins.serving("ava") and not twins.serving("mallory")
    assert twins.serving("ben")
    assert twins.registry.revoked_twins()[-1].id == "mallory"


def test_revoking_a_legacy_copy_revokes_the_registered_source(twins):
    source = adapter(1)
    twins.legacy("mallory", copies(source, seed=5)["svd_rank_2"])
    # The legacy copy is fingerprinted first, so the source is refused as its likeness...
    refused(lambda: twins.register("ava", source), "likeness_in_use")
    # ...and can only join as the same person, which makes revocation symmetric.
    twins.register("ava", source, same_person_as="mallory")
    twins.revoke("mallory")
    assert not twins.serving("ava")


def test_different_random_adapters_are_all_accepted(twins):
    for seed in range(12):
        twins.register(f"person-{seed}", adapter(100 + seed))
    assert len(twins.registry.list_twins()) == 12
    twins.revoke("person-0")
    assert {t.id for t in twins.registry.list_twins()} == {f"person-{s}" for s in range(1, 12)}


@pytest.mark.parametrize("revoked", ["ava", "ava-other-photos"])
def test_same_person_attach_links_the_twins_and_revoking_either_revokes_both(twins, revoked):
    twins.register("ava", adapter(1))
    twins.register("ben", adapter(2))
    twins.register("ava-other-photos", adapter(3), same_person_as="ava")  # another adapter: the admin's word
    twins.register("ava-resaved", copies(adapter(1), seed=6)["svd_rank_2"], same_person_as="ava")  # a near copy
    assert likeness_group(twins.registry, "ava") == ["ava", "ava-other-photos", "ava-resaved"]
    assert likeness_group(twins.registry, "ben") == ["ben"]
    twins.revoke(revoked)
    assert [twins.serving(t) for t in ("ava", "ava-other-photos", "ava-resaved", "ben")] == [False, False, False, True]


def test_same_person_cannot_launder_another_persons_likeness(twins):
    twins.register("ava", adapter(1))
    twins.register("ben", adapter(2))
    error = refused(lambda: twins.register("ben-copy", copies(adapter(2), seed=7)["metadata"], same_person_as="ava"),
                    "likeness_in_use")
    assert "'ben'" in error.message
    refused(lambda: twins.register("x", adapter(3), same_person_as="nobody"), "twin_not_found")
    assert {t.id for t in twins.registry.list_twins()} == {"ava", "ben"}


def test_a_revoked_likeness_stays_refused(twins):
    source = adapter(1)
    twins.register("ava", source)
    twins.revoke("ava")
    for kind in ("metadata", "svd_rank_2", "scaled_B_x2"):
        copy = copies(source, seed=8)[kind]
        assert "revoked" in refused(lambda: twins.register("mallory", copy), "likeness_in_use").message
        refused(lambda: twins.register("mallory", copy, same_person_as="ava"), "twin_revoked")
    twins.register("ben", adapter(2))  # a different person still registers


def test_twins_without_fingerprints_are_fingerprinted_before_a_registration_compares(twins):
    source = adapter(1)
    twins.legacy("demo-like", source)
    refused(lambda: twins.register("mallory", copies(source, seed=9)["refactor_BQ_QinvA"]), "likeness_in_use")
    assert ensure_fingerprints(twins.registry, twins.store) == 0  # all done already, none twice


def test_a_layer_named_twice_is_refused_since_the_slot_could_load_either(twins):
    tensors = random_like(template(), 1)
    key = next(k for k in sorted(tensors) if k.endswith("lora_A.weight"))
    tensors[key.replace(".lora_A.weight", ".lora_A.decoy.weight")] = np.zeros_like(tensors[key])
    error = refused(lambda: twins.register("two-faced", write(tensors)), "adapter_incompatible")
    assert "more than one lora_A" in error.message


def test_fingerprint_ignores_factorisation_and_scale_but_not_the_person():
    source = adapter(1)
    base = fingerprint_adapter(source)
    assert base.vector.shape == (DIM,) and abs(float(np.linalg.norm(base.vector)) - 1) < 1e-5
    tensors, _ = read(source)
    for module in {k.rsplit(".lora_", 1)[0] for k in tensors}:
        q = np.random.default_rng(0).standard_normal((4, 4)) + 3 * np.eye(4)
        tensors[f"{module}.lora_B.weight"] = (tensors[f"{module}.lora_B.weight"] @ q * 5).astype(np.float32)
        tensors[f"{module}.lora_A.weight"] = (np.linalg.inv(q) @ tensors[f"{module}.lora_A.weight"]).astype(np.float32)
    assert distance(base, fingerprint_adapter(write(tensors))) < 1e-4
    assert distance(base, fingerprint_adapter(adapter(2))) > THRESHOLD
    assert fingerprint_adapter(source).to_bytes() == base.to_bytes()  # deterministic


def test_the_admin_route_refuses_a_copy_attaches_the_same_person_and_revokes_both(client, admin_headers, demo_home):
    """Through the gateway's real admin routes (in-process ASGI app and renderer)."""
    tensors, _ = read((demo_home / "adapters" / "demo-ava.safetensors").read_bytes())
    source = write(random_like(tensors, 4242), {"format": "pt"})

    def upload(twin_id: str, data: bytes, **form):
        return client.post("/v1/admin/twins", headers=admin_headers, data={"twin_id": twin_id, **form},
                           files={"adapter": ("a.safetensors", data, "application/octet-stream")})

    assert upload("lk-source", source).status_code in (200, 201)
    copy = copies(source, seed=10)["refactor_BQ_QinvA"]
    response = upload("lk-mallory", copy)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "likeness_in_use" and response.json()["error"]["field"] == "adapter"
    demo_copy = copies((demo_home / "adapters" / "demo-ben.safetensors").read_bytes(), seed=11)["metadata"]
    assert upload("lk-demo-copy", demo_copy).json()["error"]["code"] == "likeness_in_use"  # a demo twin, never fingerprinted
    attached = upload("lk-attached", copy, same_person_as="lk-source")
    assert attached.status_code in (200, 201), attached.text
    consent = client.post("/v1/admin/consent", headers=admin_headers, json={
        "twin_id": "lk-attached", "tenants": ["demo"], "uses": ["ecommerce"], "recorded_by": "tests"})
    assert consent.status_code == 201, consent.text
    generate = {"twin_id": "lk-attached", "prompt": "studio photo", "width": 256, "height": 256, "steps": 2, "seed": 4}
    assert client.post("/v1/generate", json=generate).status_code == 200
    revoked = client.post("/v1/admin/twins/revoke", headers=admin_headers, json={"twin_id": "lk-source"})
    assert revoked.status_code == 200, revoked.text
    after = client.post("/v1/generate", json=generate)
    assert (after.status_code, after.json()["error"]["code"]) == (403, "revoked")
