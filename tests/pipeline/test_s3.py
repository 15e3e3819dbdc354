"""S3 for real, once against moto's server and once against SeaweedFS (credentials enforced):
the missing bucket is created through boto3, MLflow artifacts and the DVC remote live in it and
read back from it, and `forgetflow data gc` purges forgotten rows' objects from the bucket."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import dvc.api
import pytest
import torch
from s3servers import S3Server
from typer.testing import CliRunner

from forgetflow.adapters.datarepo import OVERLAY, DataRepo
from forgetflow.adapters.dataversions import drop_version, poison_version, prepare
from forgetflow.adapters.registry import Registry
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app
from forgetflow.core.params import DataParams
from forgetflow.core.triggers import TriggerSpec

from .conftest import TINY_PARAMS, build_trained_workspace


def keys(server: S3Server, bucket: str) -> list[str]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_artifacts_and_dvc_remote_on_s3(s3_server: S3Server, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = s3_server.use(monkeypatch)
    assert bucket not in {b["Name"] for b in s3_server.client().list_buckets()["Buckets"]}
    env = build_trained_workspace(tmp_path / "s3ws", epochs=1)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    found = keys(s3_server, bucket)  # the bucket was created by the code under test
    assert any(k.startswith("ws/dvc/") for k in found)
    assert any(k.startswith("ws/mlflow/") and k.endswith("MLmodel") for k in found)

    ws = Workspace.from_env()
    repo = DataRepo(ws)
    assert f"s3://{bucket}/ws/dvc" in (repo.path / ".dvc" / "config").read_text()
    shutil.rmtree(repo.path / ".dvc" / "cache")  # reads must now come from the bucket
    (repo.path / "manifest.csv").unlink()
    text = dvc.api.read("manifest.csv", repo=str(repo.path), rev="v1")
    assert text.startswith("id,label,split,subject")

    registry = Registry(ws)
    model, spec, _ = registry.load(registry.ref("ff-test", "champion"))
    assert model(torch.rand(2, 1, 16, 16)).shape == (2, spec.num_classes)


def object_key(repo: DataRepo, rev: str, path: str) -> str:
    """Where DVC 3 stores a tracked file in the remote: files/md5/<2>/<30>."""
    dvcfile = subprocess.run(["git", "-C", str(repo.path), "show", f"{rev}:{path}.dvc"],
                             capture_output=True, text=True, check=True).stdout
    md5 = re.search(r"md5: ([0-9a-f]{32})", dvcfile).group(1)
    return f"ws/dvc/files/md5/{md5[:2]}/{md5[2:]}"


def test_gc_purges_forgotten_objects_from_s3(s3_server: S3Server,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = s3_server.use(monkeypatch)
    repo = DataRepo(Workspace.from_env())
    prepare(repo, DataParams(**TINY_PARAMS["data"]))
    poisoned = poison_version(repo, TriggerSpec(), rate=0.05, seed=0)
    overlay = repo.overlay(poisoned)
    assert overlay is not None and len(overlay.ids) > 10
    forgotten = object_key(repo, "v2", OVERLAY)
    assert forgotten in keys(s3_server, bucket)

    newest = drop_version(repo, poisoned, overlay.ids, {}, "b-test", [1])  # forget those rows
    assert newest.tag == "v3" and newest.info["poison"] is None
    kept = [object_key(repo, "v3", p) for p in ("manifest.csv", "exclusions.csv")]
    result = CliRunner().invoke(app, ["data", "gc"])
    assert result.exit_code == 0, result.output

    remaining = set(keys(s3_server, bucket))
    assert forgotten not in remaining
    assert set(kept) <= remaining
    (repo.path / "manifest.csv").unlink()
    shutil.rmtree(repo.path / ".dvc" / "cache")
    assert dvc.api.read("manifest.csv", repo=str(repo.path), rev="v3").startswith("id,label")
