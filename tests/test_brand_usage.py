"""A brand's own usage (`GET /v1/usage` with a `usage` key), on the session's served demo.

- A brand's `usage` key sees its own tenant's rows only, with images generated, delivered and
  rejected counted separately: 5 generated (one synchronous, four in jobs), 3 delivered (two
  approved in a review job, one of a job without review), 1 rejected; per use; and never the
  demo tenant's image of the same twin, whatever it asks (`tenant=` another: 403).
- An `admin` key still reads every tenant (and one, with `tenant=`); a `generate`-only key: 403.
- Hostile parameters (another tenant, bad dates, reversed dates, SQL-ish strings, unknown
  parameters) answer a clear 4xx naming the field, never a 500.
- The talent's own usage breaks down by brand and use, with the same counts.
- The numbers are the registry's: asked again, the same rows. In SQL, on SQLite and PostgreSQL
  (`db_url`): generated from the audit records, delivered and rejected from those records joined
  to the catalogue items they rendered by generation id, per day, tenant, twin and use.

The brand, its licence and its images are tests/usage_support.py's (shared with the Studio
test, made once per served instance).
"""

from __future__ import annotations

import httpx
import pytest

from tests.usage_support import EXPECTED, TWIN, bearer, brand_usage, sums


def test_generated_delivered_and_rejected_are_counted_in_sql(db_url):
    """Two writers' chains, one tenant's review job (one approved, one rejected, one waiting),
    another tenant's delivered item: each count where it belongs, nothing else counted."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from sqlalchemy import update

    from service.audit.chain import ChainLog
    from service.audit.checkpoint import CheckpointSigner
    from service.registry import Jobs, open_registry
    from service.registry.audit import AuditRecords
    from service.registry.models import JobItemRow
    from service.registry.usage import UsageCounts

    registry = open_registry(db_url)
    try:
        signer = CheckpointSigner(Ed25519PrivateKey.generate())
        store = AuditRecords(registry.db)
        a, b = ChainLog(store, signer, checkpoint_seconds=0), ChainLog(store, signer, checkpoint_seconds=0)

        def generation(log, gid: str, tenant: str, use: str, images: int, outcome: str = "ok") -> None:
            event = {"event": "generation", "tenant": tenant, "twin_id": "t1", "generation_id": gid,
                     "outcome": outcome, "params": {"use": use}}
            if outcome == "ok":
                event["images"] = [{"index": n} for n in range(images)]
            log.append(event)

        for tenant in ("acme", "zeta"):
            registry.tenants.create_tenant(tenant, tenant)
        key_acme, _ = registry.tenants.create_api_key("acme", ["generate"])
        key_zeta, _ = registry.tenants.create_api_key("zeta", ["generate"])
        spec = {"twin_id": "t1", "prompt": "x"}
        jobs = Jobs(registry.db)
        review = jobs.create_job("acme", key_acme, [spec] * 3, priority=5, output_target="inline", url_expiry_s=60,
                                 webhook_per_item=False, review=True)
        other = jobs.create_job("zeta", key_zeta, [spec], priority=5, output_target="inline", url_expiry_s=60,
                                webhook_per_item=False)
        generation(a, "g-sync", "acme", "social_ads", 1)
        generation(b, "g-0", "acme", "ecommerce", 2)
        generation(a, "g-1", "acme", "ecommerce", 1)
        generation(b, "g-2", "acme", "ecommerce", 1)
        generation(a, "g-fail", "acme", "ecommerce", 4, outcome="failed")
        generation(b, "g-z", "zeta", "ecommerce", 3)
        a.append({"event": "verify", "tenant": "acme", "generation_id": "g-0", "outcome": "ok"})  # names g-0 too
        with registry.db.session() as s, s.begin():
            for job_id, idx, status, gid in ((review.id, 0, "done", "g-0"), (review.id, 1, "rejected", "g-1"),
                                             (review.id, 2, "awaiting_review", "g-2"), (other.id, 0, "done", "g-z")):
                s.execute(update(JobItemRow).where(JobItemRow.job_id == job_id, JobItemRow.idx == idx)
                          .values(status=status, result={"generation_id": gid, "images": []}))
        counts = UsageCounts(registry.db)
        rows = counts.rows()
        shape = [(r["tenant"], r["use"], r["generations"], r["images"], r["delivered"], r["rejected"]) for r in rows]
        assert shape == [("acme", "ecommerce", 3, 4, 2, 1), ("acme", "social_ads", 1, 1, 0, 0),
                         ("zeta", "ecommerce", 1, 3, 3, 0)]
        assert [r["tenant"] for r in counts.rows(tenant="acme")] == ["acme", "acme"]
        assert counts.rows(tenant="zeta")[0]["delivered"] == 3
        assert counts.rows(twins=frozenset()) == [] and counts.rows(date_from="2999-01-01") == []
        assert counts.rows(tenant="acme'; --") == []  # a value, never SQL
        a.close(), b.close()
    finally:
        registry.engine.dispose()



@pytest.fixture(scope="module")
def usage(served_demo):
    return brand_usage(served_demo)


def get(usage, key: str, path: str = "/v1/usage", **params) -> httpx.Response:
    return httpx.get(usage.url + path, headers=bearer(key), params=params, timeout=60)


def error(response: httpx.Response) -> tuple[int, str, str | None]:
    body = response.json()["error"]
    return response.status_code, body["code"], body.get("field")


@pytest.mark.slow
def test_a_usage_key_sees_its_own_tenant_with_three_counts(usage):
    answer = get(usage, usage.brand, period="month")
    assert answer.status_code == 200, answer.text
    report = answer.json()
    rows = report["rows"]
    assert rows and {r["tenant"] for r in rows} == {usage.tenant}  # never another tenant's rows
    assert {r["twin_id"] for r in rows} == {TWIN} and {r["use"] for r in rows} == {"ecommerce", "social_ads"}
    assert sums(rows) == EXPECTED
    assert sums(rows, use="ecommerce") == {"images": 4, "delivered": 3, "rejected": 1}
    assert sums(rows, use="social_ads") == {"images": 1, "delivered": 0, "rejected": 0}  # answered, not delivered
    assert set(report["counted"]) >= {"images", "delivered", "rejected"} and report["decided_complete_from"]
    assert get(usage, usage.brand, period="month").json()["rows"] == rows  # the registry's numbers, again

    daily = get(usage, usage.brand).json()["rows"]
    assert all(len(r["day"]) == 10 for r in daily) and sums(daily) == EXPECTED
    own = get(usage, usage.brand, tenant=usage.tenant, period="month").json()["rows"]
    assert own == rows  # naming its own tenant is allowed

    csv = get(usage, usage.brand, format="csv", period="month")
    lines = csv.text.splitlines()
    assert csv.headers["content-type"].startswith("text/csv")
    assert lines[0] == "day,tenant,twin_id,use,generations,images,delivered,rejected"
    assert len(lines) == len(rows) + 1 and all(f",{usage.tenant}," in line for line in lines[1:])
    assert "lookbook" not in csv.text and ",demo," not in csv.text


@pytest.mark.slow
def test_another_tenant_is_refused_and_other_keys_are_scoped(usage):
    assert error(get(usage, usage.brand, tenant="demo")) == (403, "insufficient_scope", "tenant")
    assert error(get(usage, usage.brand, tenant="no-such-tenant")) == (403, "insufficient_scope", "tenant")
    refused = get(usage, usage.generate_only)
    assert error(refused) == (403, "insufficient_scope", None)
    assert "'admin' or 'usage'" in refused.json()["error"]["message"]
    assert get(usage, usage.brand, path="/v1/usage/talent").status_code == 403  # a brand is not the talent

    # the operator sees every tenant, or one
    every = get(usage, usage.admin, period="month", twin=TWIN).json()["rows"]
    assert {usage.tenant, "demo"} <= {r["tenant"] for r in every}
    assert sums(every, tenant=usage.tenant) == EXPECTED
    demo_only = get(usage, usage.admin, period="month", tenant="demo", twin=TWIN).json()["rows"]
    assert demo_only and {r["tenant"] for r in demo_only} == {"demo"} and "lookbook" in {r["use"] for r in demo_only}


@pytest.mark.slow
@pytest.mark.parametrize("params, status, field", [
    ({"from": "2025-13-01"}, 422, "from"),
    ({"to": "yesterday"}, 422, "to"),
    ({"from": "2025-03-02", "to": "2025-03-01"}, 422, "from"),
    ({"twin": "x' OR '1'='1"}, 422, "twin"),
    ({"tenant": "demo'; DROP TABLE audit_records; --"}, 422, "tenant"),
    ({"tenant": "../demo"}, 422, "tenant"),
    ({"period": "year"}, 422, "period"),
    ({"format": "xml"}, 422, "format"),
    ({"tenant_id": "demo"}, 422, "tenant_id"),
])
def test_hostile_parameters_get_a_clear_4xx(usage, params, status, field):
    response = get(usage, usage.brand, **params)
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["field"] == field and body["message"]


@pytest.mark.slow
def test_the_talent_sees_the_brand_and_use_breakdown(usage):
    rows = get(usage, usage.talent, path="/v1/usage/talent").json()["rows"]
    assert {r["twin_id"] for r in rows} == {TWIN} and all(len(r["day"]) == 7 for r in rows)
    assert sums(rows, tenant=usage.tenant) == EXPECTED
    assert sums(rows, tenant=usage.tenant, use="ecommerce")["rejected"] == 1
    assert sums(rows, tenant="demo", use="lookbook")["images"] >= 1  # the other brand, by use
    one_brand = get(usage, usage.talent, path="/v1/usage/talent", tenant=usage.tenant).json()["rows"]
    assert one_brand and {r["tenant"] for r in one_brand} == {usage.tenant}


@pytest.mark.slow
def test_the_brand_statement_is_the_persons_seen_from_the_brand(usage):
    """What the brand owes for today's images: every one under the licence at 0.40 EUR, due 45
    days after the period; the same rows the person's own statement shows for this brand."""
    import datetime as dt
    from decimal import Decimal

    today = dt.datetime.now(dt.timezone.utc).date()
    period = {"from": (today - dt.timedelta(days=1)).isoformat(), "to": today.isoformat()}
    answer = get(usage, usage.brand, path="/v1/usage/statement", **period)
    assert answer.status_code == 200, answer.text
    statement = answer.json()
    assert statement["rows"] and {r["brand"] for r in statement["rows"]} == {usage.tenant}
    assert statement["images"] == EXPECTED["images"] and set(statement["amounts"]) == {"EUR"}
    assert Decimal(statement["amounts"]["EUR"]) == Decimal("2.00")  # 5 images at 0.40
    assert {Decimal(r["rate_per_image"]) for r in statement["rows"]} == {Decimal("0.40")}
    assert statement["due"] == (today + dt.timedelta(days=45)).isoformat()
    persons = get(usage, usage.talent, path="/v1/usage/talent/statement", **period).json()["rows"]
    assert [r for r in persons if r["brand"] == usage.tenant] == statement["rows"]
    assert any(r["brand"] == "demo" for r in persons)  # the person's covers every brand; the brand's, its own
    admin = get(usage, usage.admin, path="/v1/usage/statement", tenant=usage.tenant, **period).json()
    assert admin["rows"] == statement["rows"]
    csv = get(usage, usage.brand, path="/v1/usage/statement", format="csv", **period)
    assert csv.headers["content-type"].startswith("text/csv") and "demo," not in csv.text
    assert error(get(usage, usage.brand, path="/v1/usage/statement", tenant="demo", **period)) == (
        403, "insufficient_scope", "tenant")
    assert error(get(usage, usage.admin, path="/v1/usage/statement", **period)) == (422, "invalid_field", "tenant")
    assert error(get(usage, usage.generate_only, path="/v1/usage/statement", **period))[:2] == (
        403, "insufficient_scope")
    assert error(get(usage, usage.brand, path="/v1/usage/statement", to=period["to"]))[2] == "from"
    assert error(get(usage, usage.brand, path="/v1/usage/statement", period="day", **period))[2] == "period"
