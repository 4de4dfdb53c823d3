"""Garments beyond their labels: the classifier interface and its CLIP implementation, the
gate's verdict on a classified garment, and consents that hold unverified garments for review
(`review_unverified_garments`, migration 0007) through the real API.

A fake classifier stands in for a real one where the test is about the gate; a tiny
random-weight CLIP built from a config proves the implementation's wiring (never its
accuracy: its scores are noise)."""

from __future__ import annotations

import functools

import io
import logging
from types import SimpleNamespace

import pytest
from PIL import Image

from service.errors import Forbidden
from service.tenancy.consent import ConsentGate, GarmentReviewRequired, Grant, classified_category
from tests.conftest import SMALL
from tests.test_tenancy import new_twin
from tests.polling import wait_for as poll

PRINCIPAL = SimpleNamespace(tenant_id="demo")


def png(colour=(200, 30, 90), size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


class FakeClassifier:
    """Says what it is told: {asset_id's first byte: category}."""

    name = "fake"

    def __init__(self, verdicts: dict[bytes, str]):
        self.verdicts = verdicts
        self.calls = 0

    def classify(self, image: bytes) -> dict[str, float]:
        self.calls += 1
        top = self.verdicts.get(image, "tops")
        return {name: (0.9 if name == top else 0.1 / 8) for name in
                ("lingerie", "swimwear", "sleepwear", "tops", "bottoms", "one-pieces", "outerwear", "shoes", "accessories")}


def garments(*pairs):
    return SimpleNamespace(garments=[SimpleNamespace(asset_id=a, category=c) for a, c in pairs])


def grant(excluded=("lingerie", "swimwear", "sleepwear"), review=False) -> Grant:
    return Grant("ava", 1, 1, frozenset(excluded), review)


# -- the gate, with a fake classifier ------------------------------------------------------


def test_a_classified_garment_is_its_category_whatever_its_label():
    gate = ConsentGate(registry=None)  # type: ignore[arg-type]
    images = {"a" * 64: b"lace-bra-packshot", "b" * 64: b"linen-shirt"}
    fake = FakeClassifier({b"lace-bra-packshot": "lingerie"})
    gate.use_classifier(fake, lambda tenant, asset_id: images[asset_id])
    with pytest.raises(Forbidden) as refused:  # labelled tops, looks like lingerie: refused
        gate.admit_garments(PRINCIPAL, grant(), garments(("b" * 64, "tops"), ("a" * 64, "tops")), can_hold=False)
    assert (refused.value.code, refused.value.field) == ("category_not_allowed", "garments.1.asset_id")
    assert gate.admit_garments(PRINCIPAL, grant(), garments(("b" * 64, "tops")), can_hold=False) is False
    # a consent that includes lingerie lets it through; with review on it is held (a restricted category)
    assert gate.admit_garments(PRINCIPAL, grant(excluded=()), garments(("a" * 64, "tops")), can_hold=True) is False
    assert gate.admit_garments(PRINCIPAL, grant((), review=True), garments(("a" * 64, "tops")), can_hold=True) is True
    assert gate.admit_garments(PRINCIPAL, grant((), review=True), garments(("b" * 64, "tops")), can_hold=False) is False
    assert fake.calls == 2  # classified once per image (by sha256), however often it is used


def test_without_a_classifier_review_holds_every_garment_image_and_sync_routes_refuse():
    gate = ConsentGate(registry=None)  # type: ignore[arg-type]
    held = grant(review=True)
    assert gate.admit_garments(PRINCIPAL, held, garments(("a" * 64, "tops")), can_hold=True) is True
    assert gate.admit_garments(PRINCIPAL, held, garments(), can_hold=False) is False  # no garment image
    assert gate.admit_garments(PRINCIPAL, grant(), garments(("a" * 64, "tops")), can_hold=False) is False
    with pytest.raises(GarmentReviewRequired) as refused:
        gate.admit_garments(PRINCIPAL, held, garments(("a" * 64, "tops")), can_hold=False)
    assert (refused.value.status, refused.value.code) == (403, "garment_review_required")


@pytest.mark.parametrize("scores, expected", [
    ({"tops": 0.6, "lingerie": 0.35, "swimwear": 0.05}, "lingerie"),  # above the threshold though not top
    ({"tops": 0.8, "lingerie": 0.1, "swimwear": 0.1}, None),
    ({"swimwear": 0.2, "tops": 0.15, "shoes": 0.15, "bottoms": 0.5 - 0.4, "sleepwear": 0.1}, "swimwear"),  # top
    ({"tops": 1.0}, None),
])
def test_a_restricted_category_counts_when_top_or_above_the_threshold(scores, expected):
    assert classified_category(scores, 0.3) == expected


# -- the CLIP implementation, on a tiny random model ----------------------------------------


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from transformers import CLIPConfig, CLIPModel

    from builds.tokenizer import write_clip_tokenizer

    path = tmp_path_factory.mktemp("clip")
    vocab = write_clip_tokenizer(path)
    text = dict(vocab_size=vocab, hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=77, bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1)
    vision = dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                  num_attention_heads=2)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=32)).save_pretrained(path)
    return path


def test_the_clip_classifier_scores_every_category_from_a_local_directory(tiny_clip):
    from service.assets.garment_classifier import CATEGORIES, ClipGarmentClassifier

    classifier = ClipGarmentClassifier.load(tiny_clip)
    scores = classifier.classify(png())
    assert tuple(scores) == CATEGORIES and abs(sum(scores.values()) - 1.0) < 1e-3
    assert all(0.0 < s < 1.0 for s in scores.values())
    assert classifier.classify(png()) == scores  # deterministic
    assert classifier.classify(png((10, 200, 10), (300, 90))) != scores  # it reads the image


def test_a_configured_classifier_loads_at_start_up_and_the_gate_applies_it(tiny_clip):
    from service.assets.garment_classifier import load_garment_classifier
    from service.config import Settings

    settings = Settings.from_env({"ATELIER_GARMENT_CLASSIFIER_PATH": str(tiny_clip),
                                  "ATELIER_GARMENT_CLASSIFIER_THRESHOLD": "0.000001"})
    classifier = load_garment_classifier(settings)
    gate = ConsentGate(registry=None)  # type: ignore[arg-type]
    gate.use_classifier(classifier, lambda tenant, asset_id: png(), threshold=settings.garment_classifier_threshold)
    # at a threshold this low every image is "in" its best restricted category: the label does not matter
    with pytest.raises(Forbidden) as refused:
        gate.admit_garments(PRINCIPAL, grant(), garments(("c" * 64, "shoes")), can_hold=False)
    assert refused.value.code == "category_not_allowed"


def test_without_the_setting_no_classifier_runs_and_a_notice_is_logged(caplog):
    from service.assets.garment_classifier import load_garment_classifier
    from service.config import Settings

    with caplog.at_level(logging.INFO, logger="atelier.garments"):
        assert load_garment_classifier(Settings.from_env({})) is None
    assert any("garment classifier off" in r.getMessage() for r in caplog.records)


# -- review through the API ----------------------------------------------------------------


wait_for = functools.partial(poll, timeout=180.0)


@pytest.fixture(scope="module")
def core(client):
    from service.gateway.service import API

    return API.state.core


@pytest.fixture(scope="module")
def reviewed_twin(client, admin_headers, demo_home) -> str:
    new_twin(client, admin_headers, demo_home, "review-ines", seed=4101, included_categories=["lingerie"],
             review_unverified_garments=True)
    return "review-ines"


@pytest.fixture(scope="module")
def garment(client, demo_home) -> str:
    data = (demo_home / "demo" / "assets" / "garment-tshirt.png").read_bytes()
    response = client.post("/v1/assets", files={"file": ("g.png", data, "image/png")}, data={"kind": "garment"})
    assert response.status_code == 201, response.text
    return response.json()["asset_id"]


def test_the_admin_consent_route_records_and_shows_the_flag(client, admin_headers, reviewed_twin):
    history = client.get("/v1/admin/consent/history", params={"twin_id": reviewed_twin}, headers=admin_headers).json()
    assert history["versions"][-1]["review_unverified_garments"] is True
    twins = {t["id"]: t for t in client.get("/v1/twins").json()["twins"]}
    assert twins[reviewed_twin]["consent"]["review_unverified_garments"] is True
    assert twins["demo-ava"]["consent"]["review_unverified_garments"] is False


def test_a_synchronous_generation_with_an_unverified_garment_is_refused(client, reviewed_twin, garment, records):
    body = {"twin_id": reviewed_twin, "prompt": "studio photo", **SMALL,
            "garments": [{"asset_id": garment, "category": "tops"}]}
    response = client.post("/v1/generate", json=body)
    assert response.status_code == 403 and response.json()["error"]["code"] == "garment_review_required"
    assert records("event", "generation")[-1]["reason"] == "garment_review_required"
    assert client.post("/v1/generate", json={**body, "garments": []}).status_code == 200  # text only: no review
    assert client.post("/v1/generate", json={**body, "twin_id": "demo-ava"}).status_code == 200  # flag off


def test_a_job_with_unverified_garments_is_held_for_review_until_approved(client, reviewed_twin, garment):
    item = {"twin_id": reviewed_twin, "prompt": "studio photo", **SMALL}
    body = {"items": [{**item, "garments": [{"asset_id": garment, "category": "tops"}]}, item]}
    job_id = client.post("/v1/jobs/submit", json=body).json()["job_id"]
    status = wait_for(lambda: (s := client.get(f"/v1/jobs/status?job_id={job_id}").json())
                      .get("items_awaiting_review") == 2 and s)
    assert status["review"] is True and status["items_done"] == 0  # nothing delivered before a person looks
    decided = client.post("/v1/jobs/approve", json={"job_id": job_id, "items": [0]}).json()
    assert decided["decided"] == [0]
    client.post("/v1/jobs/reject", json={"job_id": job_id, "items": [1]})
    items = client.get(f"/v1/jobs/get?job_id={job_id}").json()["items"]
    assert [i["status"] for i in items] == ["done", "rejected"]
    plain = client.post("/v1/jobs/submit", json={"items": [item]}).json()["job_id"]  # no garment image: not held
    done = wait_for(lambda: (s := client.get(f"/v1/jobs/status?job_id={plain}").json())["status"] == "completed" and s)
    assert "review" not in done and done["items_done"] == 1


def test_a_running_classifier_decides_per_item_when_it_renders(client, core, reviewed_twin, demo_home):
    """With a classifier in the gateway, the label is overruled: a "tops" garment that looks
    like lingerie is refused for a twin that excludes lingerie, and held for review (its job
    turned into a review job at render time) for one whose consent includes it and asks."""
    lace = png((250, 250, 250), (96, 96))
    shirt = png((20, 20, 200), (96, 96))
    ids = [client.post("/v1/assets", files={"file": ("g.png", data, "image/png")}, data={"kind": "garment"})
           .json()["asset_id"] for data in (lace, shirt)]
    gate = core.tenancy.gate
    gate.use_classifier(FakeClassifier({lace: "lingerie"}), lambda tenant, asset_id: core.assets.store.read(tenant, asset_id)[1])
    try:
        body = {"twin_id": "demo-ava", "prompt": "studio photo", **SMALL,
                "garments": [{"asset_id": ids[0], "category": "tops"}]}
        refused = client.post("/v1/generate", json=body)
        assert refused.status_code == 403 and refused.json()["error"] == {
            "code": "category_not_allowed", "field": "garments.0.asset_id",
            "message": "the garment image looks like lingerie, which the twin's consent does not cover"}
        assert client.post("/v1/generate", json={**body, "garments": [{"asset_id": ids[1], "category": "tops"}]}
                           ).status_code == 200
        item = {"twin_id": reviewed_twin, "prompt": "studio photo", **SMALL}
        job = {"items": [{**item, "garments": [{"asset_id": ids[1], "category": "tops"}]},
                         {**item, "garments": [{"asset_id": ids[0], "category": "tops"}]}]}
        job_id = client.post("/v1/jobs/submit", json=job).json()["job_id"]
        wait_for(lambda: {i["status"] for i in client.get(f"/v1/jobs/get?job_id={job_id}").json()["items"]}
                 <= {"done", "awaiting_review"} and client.get(f"/v1/jobs/get?job_id={job_id}").json()["items"][1]
                 ["status"] == "awaiting_review")
        status = client.get(f"/v1/jobs/status?job_id={job_id}").json()
        assert status["review"] is True and status["items_awaiting_review"] >= 1
    finally:
        gate.classifier = None


def test_the_garment_review_migration_adds_the_flag_in_place_and_drops_it_on_the_way_down(tmp_path):
    from sqlalchemy import text

    from service.registry import downgrade, upgrade
    from service.registry.db import make_engine
    from service.registry.migrate import current_revision

    # Plain SQL throughout: the models are those of the newest revision, not of 0006/0007.
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    upgrade(url, "0006")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO tenants (id, name, created_at, disabled) VALUES ('acme', 'Acme', '2026-01-01', false)"))
            conn.execute(text("INSERT INTO twins (id, display_name, adapter_key, adapter_sha256, rank, deleted, revision,"
                              " created_at, updated_at) VALUES ('ava', 'Ava', 'a.safetensors', :sha, 4, false, 1,"
                              " '2026-01-01', '2026-01-01')"), {"sha": "a" * 64})
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO consent_records (twin_id, version, uses, territories, valid_from, excluded_categories,"
                " included_categories, deny_terms, recorded_by, signed_at, created_at) VALUES ('ava', 1, '[\"ecommerce\"]',"
                " '[]', '2026-01-01', '[]', '[]', '[]', 'tests', '2026-01-01', '2026-01-01')"))
            conn.execute(text("INSERT INTO consent_tenants (consent_id, tenant_id) SELECT id, 'acme' FROM consent_records"))
        upgrade(url, "0007")
        assert current_revision(url) == "0007"
        with engine.begin() as conn:  # the old record gains the flag, off; a new version can set it
            assert conn.execute(text("SELECT review_unverified_garments FROM consent_records")).scalars().all() == [0]
            conn.execute(text(
                "INSERT INTO consent_records (twin_id, version, uses, territories, valid_from, excluded_categories,"
                " included_categories, deny_terms, recorded_by, signed_at, created_at, review_unverified_garments)"
                " VALUES ('ava', 2, '[\"ecommerce\"]', '[]', '2026-01-01', '[]', '[]', '[]', 'tests', '2026-01-02',"
                " '2026-01-02', 1)"))
            conn.execute(text("INSERT INTO consent_tenants (consent_id, tenant_id) SELECT id, 'acme' FROM consent_records"
                              " WHERE version = 2"))
            assert conn.execute(text("SELECT version, review_unverified_garments FROM consent_records ORDER BY version"
                                     )).all() == [(1, 0), (2, 1)]
        downgrade(url, "0006")
        with engine.connect() as conn:
            columns = [row[1] for row in conn.execute(text("PRAGMA table_info(consent_records)"))]
            assert "review_unverified_garments" not in columns
            assert conn.execute(text("SELECT count(*) FROM consent_tenants")).scalar() == 2
    finally:
        engine.dispose()
