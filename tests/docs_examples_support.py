"""Run the docs' examples as a reader would: the fences of README.md, docs/API.md and
docs/INTEGRATION.md, in document order, against a served Atelier.

Owns: reading the fences (every fence names its language: ```bash/```sh/```python are examples,
```json/```text/```http are outputs), the skip markers (`<!-- docs-test: skip, reason: ... -->`
on the line before a fence), the status markers (`# → 201 Created` in an example: every
three-digit number after the arrow is a status the example may answer), one bash session per
document (`set -euo pipefail`, so a variable an earlier example sets is seen by a later one;
Python examples run with the venv's python, in the same folder and environment), the capture of
every HTTP answer (a `curl` function that adds `--write-out`, and a sitecustomize that logs
http.client's answers for Python, both into the session's log under the example running), a
loopback webhook receiver, and running a docs webhook check on the webhooks it received.

Must never: edit the docs, change what an example sends, or special-case one. The only rewrite
is the base URL (`http://127.0.0.1:3000`, what `make serve` listens on) to the served instance's.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "docs/API.md", "docs/INTEGRATION.md")
BASE_URL = "http://127.0.0.1:3000"
RUNNABLE = {"bash", "sh", "python"}
OUTPUTS = {"json", "text", "http"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[^`\s]*)[ \t]*$")
SKIP = re.compile(r"^\s*<!--\s*docs-test:\s*skip\b(?P<rest>.*?)-->\s*$")
SKIP_REASON = re.compile(r"^\s*,\s*reason:\s*(?P<reason>\S.*?)\s*$")
STATUS_MARK = re.compile(r"#\s*(?:→|->)\s*(?P<says>.*)$")
STATUS = re.compile(r"(?<![\w.])([1-5]\d\d)(?![\w.])")
HTTP_LINE = re.compile(r"^(?P<index>\d+) (?P<method>\S+) (?P<status>\d{3}) (?P<url>\S*)$")
BLOCK_LINE = re.compile(r"@@docs-block (?P<index>\d+|end) (?P<at>[\d.]+)")

# Each HTTP answer is appended to the session's log (DOCS_TEST_HTTP_LOG) as "<example> <method>
# <status> <url>", under the example running (DOCS_TEST_BLOCK): the shell's curl gets its status
# from --write-out, read apart from the body and from curl's own messages (which go on to stderr).
CURL_CAPTURE = r"""curl() {
  local said line rc=0
  { said=$(command curl --write-out '%{stderr}@@docs-http %{method} %{http_code} %{url_effective}\n' "$@" 2>&1 1>&3 3>&-) || rc=$?; } 3>&1
  while IFS= read -r line; do
    case "$line" in
      *@@docs-http\ *) printf '%s %s\n' "$DOCS_TEST_BLOCK" "${line#*@@docs-http }" >> "$DOCS_TEST_HTTP_LOG";;
      ?*) printf '%s\n' "$line" >&2;;
    esac
  done <<< "$said"
  return $rc
}
export -f curl
"""
# Python's http.client (urllib, requests) logs each answer the same way.
SITECUSTOMIZE = '''"""Docs examples: log every HTTP answer (http.client, so urllib too) for the docs test."""
import http.client
import os

_putrequest = http.client.HTTPConnection.putrequest
_getresponse = http.client.HTTPConnection.getresponse


def putrequest(self, method, url, *args, **kwargs):
    self._docs_request = (method, url)
    return _putrequest(self, method, url, *args, **kwargs)


def getresponse(self):
    response = _getresponse(self)
    method, url = getattr(self, "_docs_request", ("?", "?"))
    scheme = "https" if isinstance(self, http.client.HTTPSConnection) else "http"
    if not url.startswith(("http://", "https://")):
        url = f"{scheme}://{self.host}:{self.port}{url}"
    with open(os.environ["DOCS_TEST_HTTP_LOG"], "a") as log:
        log.write(f"{os.environ.get('DOCS_TEST_BLOCK', '-')} {method} {response.status} {url}\\n")
    return response


http.client.HTTPConnection.putrequest = putrequest
http.client.HTTPConnection.getresponse = getresponse
'''


@dataclass(frozen=True)
class Block:
    doc: str
    line: int  # the opening fence's line, 1-based
    lang: str
    text: str
    skip: str | None = None  # the marker's reason ("" when the marker gives none)
    statuses: frozenset[int] = frozenset()

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.lang in RUNNABLE and self.skip is None


@dataclass
class Call:
    method: str
    status: int
    url: str


@dataclass
class Outcome:
    block: Block
    calls: list[Call] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class DocRun:
    doc: str
    returncode: int | None  # None: timed out
    outcomes: list[Outcome]
    env: dict[str, str]  # what the session exported, at its end
    seconds: float

    @property
    def last(self) -> Outcome | None:
        return self.outcomes[-1] if self.outcomes else None


def read_blocks(doc: str, root: Path = REPO) -> tuple[list[Block], list[str]]:
    """Every fence of `doc`, and the problems found in reading them (a fence without a
    language, one whose language is neither an example's nor an output's, a skip marker
    without a reason, a fence left open)."""
    lines = (root / doc).read_text().splitlines()
    blocks, problems = [], []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        start, indent, lang = index, opening["indent"], opening["lang"].lower()
        body = []
        index += 1
        while index < len(lines) and not re.match(r"^[ \t]*```[ \t]*$", lines[index]):
            body.append(lines[index][len(indent):] if lines[index].startswith(indent) else lines[index].lstrip())
            index += 1
        if index >= len(lines):
            problems.append(f"{doc}:{start + 1}: a fence is never closed")
        index += 1
        where = f"{doc}:{start + 1}"
        if not lang:
            problems.append(f"{where}: a fence without a language (```bash, ```sh or ```python for an example; "
                            f"```json, ```text or ```http for an output)")
        elif lang not in RUNNABLE | OUTPUTS:
            problems.append(f"{where}: ```{lang} is neither an example's language {sorted(RUNNABLE)} "
                            f"nor an output's {sorted(OUTPUTS)}")
        skip = None
        before = start - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        marker = SKIP.match(lines[before]) if before >= 0 else None
        if marker:
            reason = SKIP_REASON.match(marker["rest"])
            skip = reason["reason"] if reason else ""
            if not skip:
                problems.append(f"{where}: a skip marker without a reason "
                                f"(<!-- docs-test: skip, reason: why it cannot run in the suite -->)")
            if lang not in RUNNABLE:
                problems.append(f"{where}: a skip marker on a ```{lang or '(untagged)'} fence, which never runs")
        statuses = set()
        for text in body:
            said = STATUS_MARK.search(text)
            if said:
                statuses.update(int(code) for code in STATUS.findall(said["says"]))
        if lang in RUNNABLE and re.search(r"\b(import|from)\s+(httpx|aiohttp)\b", "\n".join(body)):
            problems.append(f"{where}: the docs test captures the answers of curl and http.client (urllib, "
                            f"requests) only; use one of those, or teach tests/docs_examples_support.py the client")
        blocks.append(Block(doc, start + 1, lang, "\n".join(body) + "\n", skip, frozenset(statuses)))
    return blocks, problems


def prepare_folder(folder: Path, home: Path) -> Path:
    """A reader's checkout after `make serve`: `var` is the served instance's home (its
    demo.env, demo assets and adapters) and `.venv` this repository's venv."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, target in (("var", home), (".venv", REPO / ".venv")):
        link = folder / name
        if not link.exists():
            link.symlink_to(target, target_is_directory=True)
    capture = folder / ".docs-capture"
    capture.mkdir(exist_ok=True)
    (capture / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return folder


def reader_env(folder: Path, extra: dict[str, str]) -> dict[str, str]:
    """The environment of a reader's shell: no ATELIER_* setting of the test process, the venv
    first on PATH (`python3` is the venv's), plus `extra` (the keys `. var/demo.env` exports,
    WEBHOOK_URL)."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("ATELIER_", "BENTOML_", "PYTHON", "VIRTUAL_ENV", "PYTEST"))}
    env["PATH"] = f"{REPO / '.venv' / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONPATH"] = str(folder / ".docs-capture")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def session_script(blocks: list[Block], base_url: str, folder: Path, doc: str) -> str:
    """One bash session for one document: each example in order, announced on the stream."""
    capture = folder / ".docs-capture"
    stem = re.sub(r"\W", "_", doc)
    parts = ["set -euo pipefail\n", f"export DOCS_TEST_HTTP_LOG={capture / (stem + '.http')}\n", CURL_CAPTURE]
    for index, block in enumerate(blocks):
        if not block.runs:
            continue
        text = block.text.replace(BASE_URL, base_url)
        parts.append(f"export DOCS_TEST_BLOCK={index}; printf '@@docs-block {index} %s\\n' \"$EPOCHREALTIME\" >&2\n")
        if block.lang == "python":
            script = capture / f"{stem}-{block.line}.py"
            script.write_text(text)
            parts.append(f"{sys.executable} {script}\n")
        else:
            parts.append(text)
    parts.append(f"printf '@@docs-block end %s\\n' \"$EPOCHREALTIME\" >&2\n{sys.executable} -c 'import json, os, sys; "
                 f"json.dump(dict(os.environ), open(sys.argv[1], \"w\"))' {capture / (stem + '.env.json')}\n")
    return "".join(parts)


def run_doc(doc: str, base_url: str, folder: Path, env: dict[str, str], timeout: float = 300.0,
            root: Path = REPO) -> DocRun:
    """Run every example of `doc` that is not skipped, in one bash session in `folder`."""
    blocks, _ = read_blocks(doc, root)
    script = folder / ".docs-capture" / (re.sub(r"\W", "_", doc) + ".sh")
    script.write_text(session_script(blocks, base_url, folder, doc))
    script.with_suffix(".http").unlink(missing_ok=True)
    started = time.monotonic()
    try:
        done = subprocess.run(["bash", str(script)], cwd=folder, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
        stream, returncode = done.stdout, done.returncode
    except subprocess.TimeoutExpired as expired:
        stream, returncode = expired.stdout or b"", None
    script.with_suffix(".log").write_bytes(stream)  # the whole session, for a closer look
    outcomes: list[Outcome] = []
    last_at = None
    for line in stream.decode(errors="replace").splitlines():
        started_block = BLOCK_LINE.search(line)
        if started_block:
            before = line[:started_block.start()]  # the last output of the example before, without its newline
            if outcomes and before.strip():
                outcomes[-1].output.append(before)
            at = float(started_block["at"])
            if outcomes and last_at is not None:
                outcomes[-1].seconds = at - last_at
            last_at = at
            if started_block["index"] == "end":
                break
            outcomes.append(Outcome(blocks[int(started_block["index"])]))
            continue
        if outcomes and line.strip():
            outcomes[-1].output.append(line)
    by_index = {id(outcome.block): outcome for outcome in outcomes}
    http_log = script.with_suffix(".http")
    for line in (http_log.read_text().splitlines() if http_log.exists() else []):
        call = HTTP_LINE.match(line)
        outcome = by_index.get(id(blocks[int(call["index"])])) if call else None
        if outcome is None:
            raise AssertionError(f"{doc}: an HTTP answer logged outside any example: {line!r}")
        outcome.calls.append(Call(call["method"], int(call["status"]), call["url"]))
    env_file = script.with_suffix(".env.json")
    exported = json.loads(env_file.read_text()) if returncode == 0 and env_file.exists() else {}
    return DocRun(doc, returncode, outcomes, exported, time.monotonic() - started)


def status_problems(run: DocRun, base_url: str) -> list[str]:
    """Each answer an example got that the docs do not show next to it; an example that
    shows statuses but sent nothing; an example that failed or timed out."""
    problems = []
    for outcome in run.outcomes:
        block = outcome.block
        shown = ", ".join(str(code) for code in sorted(block.statuses)) or "none"
        for call in outcome.calls:
            if call.status not in block.statuses:
                path = call.url.replace(base_url, "")
                problems.append(f"{block.where}: {call.method} {path} answered {call.status}, which the docs do not show "
                                f"for this example (it shows: {shown})")
        if block.statuses and not outcome.calls:
            problems.append(f"{block.where}: the example shows statuses ({shown}) but sent no HTTP request")
    if run.returncode != 0 and run.last is not None:
        tail = "\n    ".join(run.last.output[-25:])
        how = "timed out" if run.returncode is None else f"failed (exit {run.returncode})"
        problems.append(f"{run.last.block.where}: the example {how}; its output:\n    {tail}")
    elif run.returncode != 0:
        problems.append(f"{run.doc}: the session {'timed out' if run.returncode is None else 'failed'} "
                        f"before its first example")
    return problems


class WebhookReceiver:
    """A webhook endpoint on loopback: records each POST (path, headers, raw body) and answers 204."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver.lock:
                    receiver.events.append({"path": self.path, "body": base64.b64encode(body).decode(),
                                            "headers": {k.lower(): v for k, v in self.headers.items()}})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/atelier"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "WebhookReceiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of_job(self, job_id: str) -> list[dict]:
        with self.lock:
            events = list(self.events)
        return [event for event in events
                if json.loads(base64.b64decode(event["body"])).get("data", {}).get("job_id") == job_id]

    def wait_for(self, job_id: str, event_type: str, timeout: float = 60.0) -> list[dict]:
        """The events received for `job_id`, once one of them is `event_type`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.of_job(job_id)
            if any(json.loads(base64.b64decode(e["body"]))["type"] == event_type for e in events):
                return events
            time.sleep(0.2)
        raise TimeoutError(f"no {event_type} webhook for job {job_id} within {timeout}s "
                           f"({len(self.events)} events received in all)")


# Runs a docs example that defines a webhook check (`receive(raw_body, headers)` or
# `verify(secret, body, headers)`) on the webhooks Atelier really sent: each must pass, and the
# same body with one byte changed must not.
WEBHOOK_DRIVER = '''
import base64 as _b64, json as _json, os as _os, sys as _sys
_events = _json.load(open(_sys.argv[1]))
_checked = 0
for _event in _events:
    _body, _headers = _b64.b64decode(_event["body"]), _event["headers"]
    _forged = _body.replace(b'"job_id"', b'"job_iD"')
    if "receive" in globals():
        assert receive(_body, _headers) == _json.loads(_body), "receive() refused a webhook Atelier sent"
        assert receive(_forged, _headers) is None, "receive() accepted a changed body"
        _checked += 1
    if "verify" in globals():
        _secret = _os.environ["ATELIER_WEBHOOK_SECRET"]
        assert verify(_secret, _body, _headers) is True, "verify() refused a webhook Atelier sent"
        assert verify(_secret, _forged, _headers) is False, "verify() accepted a changed body"
        _checked += 1
assert _checked, "the example defines neither receive() nor verify()"
print(f"checked {len(_events)} webhooks")
'''


def check_webhook_example(block: Block, events: list[dict], folder: Path, env: dict[str, str]) -> str | None:
    """Run `block` (a Python webhook check) on `events`; None when it passes, else why not."""
    capture = folder / ".docs-capture"
    stem = re.sub(r"\W", "_", block.doc)
    script = capture / f"{stem}-{block.line}-webhooks.py"
    script.write_text(block.text + WEBHOOK_DRIVER)
    received = capture / f"{stem}-{block.line}-webhooks.json"
    received.write_text(json.dumps(events))
    done = subprocess.run([sys.executable, str(script), str(received)], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=120)
    if done.returncode != 0:
        return f"{block.where}: the webhook check fails on the webhooks Atelier sent:\n{done.stdout}{done.stderr}"
    return None
