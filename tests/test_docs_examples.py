"""The docs run as written (issue 24, item 6): every shell and Python example of README.md,
docs/API.md and docs/INTEGRATION.md, in that order and in document order within each, against a
served demo, failing on any HTTP status the docs do not show next to the example.

- Every fence names its language (```bash/```sh/```python run; ```json/```text/```http are
  outputs), so a new untagged example cannot slip by.
- A block that cannot run in the suite carries `<!-- docs-test: skip, reason: ... -->` on the
  line before its fence; the reason is required, and the skipped blocks are printed.
- One bash session per document (`set -euo pipefail`), in a folder laid out as a reader's
  checkout after `make serve` (`var` is the served home, `.venv` the repository's venv), with
  the variables `. var/demo.env` exports and WEBHOOK_URL (a receiver on loopback). Python
  examples run with the venv's python in the same folder and environment.
- Every HTTP answer is captured (curl's `--write-out`, http.client for Python) and must be a
  status the example shows (`# → 201 Created`). The only rewrite is the base URL.
- INTEGRATION.md's webhook checks (`receive`, `verify`) are run on the webhooks Atelier sent
  for its job: each passes, and a body changed by one byte does not.

A served instance of its own (the demo home, with the session's `served_demo` bounds: 256 px,
2 steps, loopback webhooks), because the examples do what a reader does on a fresh demo:
change a twin's consent, set the demo tenant's webhook and secret, register and revoke twins,
sign licences; the session's shared instance must keep its demo as built.
"""

from __future__ import annotations

import shutil

import pytest

from builds.demo import ENV_FILE, read_demo_env
from tests.conftest import snapshot_registry
from tests.docs_examples_support import (
    DOCS,
    WebhookReceiver,
    check_webhook_example,
    prepare_folder,
    read_blocks,
    reader_env,
    run_doc,
    status_problems,
)

pytestmark = pytest.mark.slow
# The bounds of the session's served demo: the docs' examples must fit them (and so stay quick).
BOUNDS = {"ATELIER_WARMUP": "0", "ATELIER_MAX_IMAGE_SIDE": "256", "ATELIER_MAX_STEPS": "2", "ATELIER_MAX_IMAGES": "2",
          "ATELIER_SOURCE_FAILURES_PER_MINUTE": "0", "ATELIER_RENDER_WAIT_S": "60", "ATELIER_JOB_POLL_MS": "100",
          "ATELIER_DEV_CALLBACKS": "1"}


@pytest.fixture(scope="module")
def served_docs(demo_home, tmp_path_factory):
    """`bentoml serve` of a private copy of the demo home, for the docs' examples alone."""
    from builds.serving import serve

    work = tmp_path_factory.mktemp("served-docs")
    home = work / "home"
    shutil.copytree(demo_home, home, ignore=shutil.ignore_patterns("cache", "registry.db*", "audit", "bentoml"))
    snapshot_registry(demo_home, home / "registry.db")
    env = {**BOUNDS, "ATELIER_CACHE_DIR": str(work / "cache"), "ATELIER_AUDIT_DIR": str(work / "audit")}
    server = serve(home, work, env=env)
    try:
        yield {"url": server.url, "home": home, "work": work}
    finally:
        server.stop()


def test_every_fence_names_its_language_and_every_skip_its_reason():
    problems, skipped, examples = [], [], 0
    for doc in DOCS:
        blocks, found = read_blocks(doc)
        problems += found
        skipped += [block for block in blocks if block.skip is not None]
        examples += sum(block.runs for block in blocks)
    print(f"{examples} examples run; {len(skipped)} skipped:")
    for block in skipped:
        print(f"  {block.where} ({block.lang}): {block.skip}")
    assert not problems, "\n".join(problems)
    assert examples > 40, "the docs' examples were not found"
    assert len(skipped) <= 12, "keep the skips few: only what cannot run in the suite"


def test_the_docs_examples_run_as_written_and_answer_what_they_show(served_docs, tmp_path):
    folder = prepare_folder(tmp_path / "checkout", served_docs["home"])
    keys = read_demo_env(served_docs["home"] / ENV_FILE)
    problems, summary, runs = [], [], {}
    with WebhookReceiver() as receiver:
        env = reader_env(folder, {**keys, "WEBHOOK_URL": receiver.url})
        for doc in DOCS:
            run = runs[doc] = run_doc(doc, served_docs["url"], folder, env)
            problems += status_problems(run, served_docs["url"])
            calls = sum(len(outcome.calls) for outcome in run.outcomes)
            slowest = sorted(run.outcomes, key=lambda outcome: outcome.seconds)[-3:][::-1]
            summary.append(f"{doc}: {len(run.outcomes)} examples, {calls} HTTP answers, {run.seconds:.1f} s "
                           f"(slowest: {', '.join(f'{o.block.where} {o.seconds:.1f} s' for o in slowest)})")

        # INTEGRATION.md's webhook checks, on the webhooks Atelier sent for its job
        integration = runs["docs/INTEGRATION.md"]
        checks = [block for block in read_blocks("docs/INTEGRATION.md")[0]
                  if block.runs and block.lang == "python" and ("def receive(" in block.text or "def verify(" in block.text)]
        if integration.returncode == 0:
            assert checks, "docs/INTEGRATION.md shows no webhook check (receive() or verify())"
            job = integration.env.get("JOB")
            assert job, "docs/INTEGRATION.md's session exports no JOB (its prose says `export JOB=...`)"
            events = receiver.wait_for(job, "job.completed")
            for block in checks:
                failed = check_webhook_example(block, events, folder, {**env, **integration.env})
                if failed:
                    problems.append(failed)
            summary.append(f"docs/INTEGRATION.md: {len(checks)} webhook checks on {len(events)} webhooks of job {job}")
    print("\n".join(summary))
    assert not problems, "\n".join(problems)
