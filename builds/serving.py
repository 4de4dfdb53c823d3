"""Start a real `bentoml serve` process on a free loopback port, wait until ready, stop it by PID.

Owns: the dev/test lifecycle of a served Atelier (used by the end-to-end tests and the
benchmarks). Never used by the running service itself.
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

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> "ServedAtelier":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(atelier_home: Path, workdir: Path, env: dict[str, str] | None = None, ready_timeout: float = 180.0) -> ServedAtelier:
    """Start `bentoml serve service.app:Atelier` and return once `/readyz` answers 200."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "server.log"
    full_env = {
        **os.environ,
        "ATELIER_HOME": str(atelier_home),
        "BENTOML_HOME": str(workdir / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "PYTHONPATH": str(REPO),
        **(env or {}),
    }
    bentoml_cli = Path(sys.executable).with_name("bentoml")
    command = [str(bentoml_cli), "serve", "service.app:Atelier", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO, env=full_env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    served = ServedAtelier(process, f"http://127.0.0.1:{port}", log_path)
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
