"""S3 switch: with FORGETFLOW_S3_URL and an S3 endpoint (a local moto server here), MLflow
artifacts and the data registry's DVC remote both live in the bucket, and read back from it."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import dvc.api
import pytest
import torch
from moto.server import ThreadedMotoServer

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.registry import Registry
from forgetflow.adapters.workspace import Workspace

from .conftest import build_trained_workspace

BUCKET = "forgetflow-test"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "MLFLOW_S3_ENDPOINT_URL": endpoint,
                       "FORGETFLOW_S3_URL": f"s3://{BUCKET}/ws"}.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def test_artifacts_and_dvc_remote_on_s3(s3: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    env = build_trained_workspace(tmp_path / "s3ws", epochs=1)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=s3).list_objects_v2(
        Bucket=BUCKET)["Contents"]]
    assert any(k.startswith("ws/dvc/") for k in keys)
    assert any(k.startswith("ws/mlflow/") and k.endswith("MLmodel") for k in keys)

    ws = Workspace.from_env()
    repo = DataRepo(ws)
    assert f"s3://{BUCKET}/ws/dvc" in (repo.path / ".dvc" / "config").read_text()
    shutil.rmtree(repo.path / ".dvc" / "cache")  # reads must now come from the bucket
    (repo.path / "manifest.csv").unlink()
    text = dvc.api.read("manifest.csv", repo=str(repo.path), rev="v1")
    assert text.startswith("id,label,split,subject")

    registry = Registry(ws)
    model, spec, _ = registry.load(registry.ref("ff-test", "champion"))
    assert model(torch.rand(2, 1, 16, 16)).shape == (2, spec.num_classes)
