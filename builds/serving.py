"""Start real BentoML server processes on free loopback ports, wait until ready, stop them by PID.

Owns: the dev/test lifecycle of a served Atelier (used by the end-to-end tests and the
benchmarks): `serve` runs the whole bento (`bentoml serve`: the gateway, and the renderer
in its own processes), `serve_one` runs one service alone against another's URL, as a
platform does (BentoML's `start-http-server --service-name --depends`). Never used by the
running service itself.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServedAtelier:
    process: subprocess.Popen
    url: str
    log_path: Path
    workers: list[int] = field(default_factory=list)  # BentoML's workers run in sessions of their own

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the server's process group, then any worker still alive; SIGKILL what hangs.

        A worker outlives its arbiter when the arbiter is SIGKILLed (a durability test does
        that on purpose), so the workers seen at start-up are stopped by PID as well."""
        import psutil

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        alive = []
        for pid in self.workers:
            try:
                worker = psutil.Process(pid)
                worker.terminate()
                alive.append(worker)
            except psutil.NoSuchProcess:
                continue
        _, still = psutil.wait_procs(alive, timeout=10)
        for worker in still:
            worker.kill()
        return self.process.returncode

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 180.0) -> None:
        """Wait until the server's log holds `text` at least `count` times (e.g. every renderer
        worker's ready line: the gateway is ready before any renderer is)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.log_path.read_text(errors="replace").count(text) >= count:
                    return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
            time.sleep(0.25)
        raise TimeoutError(f"{text!r} did not appear {count} times within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> "ServedAtelier":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


TARGET = "service.gateway.service:Gateway"
GATEWAY, RENDERER = "atelier-gateway", "atelier-renderer"


def serve(atelier_home: Path, workdir: Path, env: dict[str, str] | None = None, ready_timeout: float = 180.0) -> ServedAtelier:
    """Start `bentoml serve` of the whole bento and return once `/readyz` answers 200."""
    port = free_port()
    bentoml_cli = Path(sys.executable).with_name("bentoml")
    command = [str(bentoml_cli), "serve", TARGET, "--host", "127.0.0.1", "--port", str(port)]
    return _start(command, port, atelier_home, workdir, "server.log", env, ready_timeout)


def serve_one(service_name: str, atelier_home: Path, workdir: Path, env: dict[str, str] | None = None,
              depends: dict[str, str] | None = None, port: int | None = None, ready_timeout: float = 180.0,
              wait_ready: bool = True) -> ServedAtelier:
    """Start one service of the bento alone (the renderer, or the gateway against a renderer's
    URL); with `wait_ready=False`, return as soon as the process runs."""
    port = port or free_port()
    command = [sys.executable, "-c", "from bentoml_cli._internal.start import start_command; start_command()",
               "start-http-server", TARGET, "--service-name", service_name, "--host", "127.0.0.1", "--port", str(port),
               *[arg for name, url in (depends or {}).items() for arg in ("--depends", f"{name}={url}")]]
    return _start(command, port, atelier_home, workdir, f"{service_name}.log", env, ready_timeout if wait_ready else 0)


def _start(command: list[str], port: int, atelier_home: Path, workdir: Path, log_name: str,
           env: dict[str, str] | None, ready_timeout: float) -> ServedAtelier:
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / log_name
    full_env = {
        **os.environ,
        "ATELIER_HOME": str(atelier_home),
        "BENTOML_HOME": str(workdir / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "PYTHONPATH": str(REPO),
        **(env or {}),
    }
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO, env=full_env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    served = ServedAtelier(process, f"http://127.0.0.1:{port}", log_path)
    if ready_timeout <= 0:
        return served
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {process.returncode}:\n{served.log_tail()}")
        try:
            with urllib.request.urlopen(served.url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    import psutil

                    served.workers = [child.pid for child in psutil.Process(process.pid).children(recursive=True)]
                    return served
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    served.stop()
    raise TimeoutError(f"bentoml serve was not ready within {ready_timeout}s:\n{served.log_tail()}")
