"""A request never runs with another twin's weights, also with many requests in flight."""

import random
import threading

from service.schemas import GenerateRequest
from tests.conftest import same_picture

TWINS = ("demo-ava", "demo-ben", "demo-cleo")


def request(twin_id, seed):
    return GenerateRequest(twin_id=twin_id, prompt="studio photo, knitted sweater", width=256, height=256, steps=2, seed=seed)


def test_interleaved_requests_from_threads_match_single_request_references(engine):
    references = {(t, s): engine.generate(request(t, s)).images[0].sha256 for t in TWINS for s in (1, 2)}
    assert len(set(references.values())) == 6
    jobs = [(t, s) for t in TWINS for s in (1, 2)] * 4
    random.Random(0).shuffle(jobs)
    results, errors = [], []
    lock = threading.Lock()

    def worker(chunk):
        for twin_id, seed in chunk:
            try:
                digest = engine.generate(request(twin_id, seed)).images[0].sha256
                with lock:
                    results.append((twin_id, seed, digest))
            except Exception as exc:  # pragma: no cover - reported by the assert below
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(jobs[i::6],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == len(jobs)
    wrong = [(t, s) for t, s, digest in results if digest != references[(t, s)]]
    assert not wrong, f"{len(wrong)} outputs carried another twin's weights: {wrong[:3]}"


def test_interleaved_http_requests_match_references(client, registry):
    """Over HTTP every image is watermarked with its own id, so pictures are compared, not bytes."""
    _, token = registry.create_api_key("demo", ["generate"], name="isolation", max_concurrent_jobs=16,
                                       requests_per_minute=600)  # 9 requests in a few seconds: a burst of 61
    headers = {"Authorization": f"Bearer {token}"}
    bodies = {t: {"twin_id": t, "prompt": "street style", "width": 256, "height": 256, "steps": 2, "seed": 9} for t in TWINS}
    references = {t: client.post("/v1/generate/image", json=b, headers=headers).content for t, b in bodies.items()}
    assert not same_picture(references["demo-ava"], references["demo-ben"])
    assert not same_picture(references["demo-ben"], references["demo-cleo"])
    order = list(TWINS) * 2  # 6 at once, through the gateway to one in-process renderer
    random.Random(1).shuffle(order)
    got = {}

    def call(i, twin_id):
        got[i] = (twin_id, client.post("/v1/generate/image", json=bodies[twin_id], headers=headers).content)

    threads = [threading.Thread(target=call, args=(i, t)) for i, t in enumerate(order)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == len(order)
    assert all(same_picture(image, references[twin_id]) for twin_id, image in got.values())
