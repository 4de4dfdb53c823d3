"""A rejection's reasons, a job's title and an item's alt text on the served API (issue 30).

`POST /v1/jobs/reject` takes an optional `reason` for the call and `reasons` per item index;
they are bounded (500 characters, no control characters or direction overrides, not blank,
only for items of the call): a refusal is `422 invalid_field` naming the field, before any job
is read. Kept reasons show in the job's results (`rejection_reason`) and in the `job.reject`
audit record; a job's `title` shows in its status, an item's own `alt_text` in its results.
On the session's served demo (`served_demo`), with the demo tenant's key.
"""

from __future__ import annotations

import httpx
import pytest

from tests.audit_reading import find
from tests.polling import wait_for

pytestmark = pytest.mark.slow
SMALL = {"width": 256, "height": 256, "steps": 2}
NO_JOB = "0" * 32


def call(served_demo, method: str, path: str, **options) -> httpx.Response:
    return httpx.request(method, served_demo["url"] + path, timeout=60,
                         headers={"Authorization": f"Bearer {served_demo['demo']}"}, **options)


def refused(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["field"]


@pytest.mark.parametrize("body, field, says", [
    ({"items": [1], "reason": "x" * 501}, "reason", "at most 500"),
    ({"items": [1], "reason": "wrong colour\nsee the brief"}, "reason", "control characters"),
    ({"items": [1], "reason": "nul \x00 byte"}, "reason", "control characters"),
    ({"items": [1], "reason": "\u202eevil"}, "reason", "direction overrides"),
    ({"items": [1], "reason": "   "}, "reason", "blank"),
    ({"items": [1], "reasons": {"1": "tab\there"}}, "reasons.1", "control characters"),
    ({"items": [1], "reasons": {"1": "y" * 501}}, "reasons.1", "at most 500"),
    ({"items": [1], "reasons": {"2": "not in this call"}}, "reasons", "not an index of `items`"),
    ({"items": [1], "reason": 7}, "reason", "string"),
])
def test_a_rejection_reason_out_of_bounds_is_refused_naming_its_field(served_demo, body, field, says):
    answer = call(served_demo, "POST", "/v1/jobs/reject", json={"job_id": NO_JOB, **body})
    assert refused(answer) == (422, "invalid_field", field)
    assert says in answer.json()["error"]["message"]


def test_reasons_are_kept_in_the_results_and_the_audit_and_titles_and_alt_texts_name_the_job(served_demo):
    # the title and the alt text are bounded as the reason is
    bad_title = call(served_demo, "POST", "/v1/jobs/submit",
                     json={"title": "a\tb", "items": [{"twin_id": "demo-ava", "prompt": "coat", **SMALL}]})
    assert refused(bad_title) == (422, "invalid_field", "title")
    bad_alt = call(served_demo, "POST", "/v1/jobs/submit",
                   json={"items": [{"twin_id": "demo-ava", "prompt": "coat", "alt_text": "z" * 251, **SMALL}]})
    assert refused(bad_alt) == (422, "invalid_field", "items.0.alt_text")
    # an approval takes no reason
    assert refused(call(served_demo, "POST", "/v1/jobs/approve",
                        json={"job_id": NO_JOB, "items": [0], "reason": "fine"})) == (422, "invalid_field", "reason")

    items = [{"twin_id": "demo-ava", "prompt": f"wool coat {i}", "sku": f"RR-{i}", **SMALL} for i in range(3)]
    items[2] = {**items[2], "alt_text": "Ava in the camel wool coat, front"}
    submitted = call(served_demo, "POST", "/v1/jobs/submit",
                     json={"title": "  AW26 coats  ", "review": True, "webhook_per_item": True, "items": items})
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    status = wait_for(lambda: (s := call(served_demo, "GET", "/v1/jobs/status", params={"job_id": job_id}).json())
                      .get("items_awaiting_review") == 3 and s, timeout=180)
    assert status["title"] == "AW26 coats"  # stripped

    rejected = call(served_demo, "POST", "/v1/jobs/reject", json={
        "job_id": job_id, "items": [0, 1], "reason": "the hem is cut off", "reasons": {"1": "logo on the sleeve"}})
    assert rejected.status_code == 200 and rejected.json()["decided"] == [0, 1]
    assert call(served_demo, "POST", "/v1/jobs/approve", json={"job_id": job_id, "items": [2]}).status_code == 200

    page = call(served_demo, "GET", "/v1/jobs/get", params={"job_id": job_id}).json()
    assert page["status"] == "completed" and page["title"] == "AW26 coats"
    assert [(i["status"], i.get("rejection_reason")) for i in page["items"]] == [
        ("rejected", "the hem is cut off"), ("rejected", "logo on the sleeve"), ("done", None)]
    assert page["items"][2]["alt_text"] == "Ava in the camel wool coat, front"
    [record] = wait_for(lambda: [r for r in find(served_demo["home"], "event", "job.reject") if r.get("job_id") == job_id])
    assert record["reasons"] == {"0": "the hem is cut off", "1": "logo on the sleeve"} and record["outcome"] == "ok"
