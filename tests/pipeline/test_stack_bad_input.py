"""A wrong production setting fails fast through the real CLI: exit 2, an error naming the
setting, and nothing written (no data version, no ledger row, no run, no registered version)."""

from __future__ import annotations

from pathlib import Path

import pytest
from s3servers import S3Server, free_ports
from typer.testing import CliRunner

from forgetflow.adapters.registry import Registry
from forgetflow.adapters.stack import StackError
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app

from .conftest import build_trained_workspace

UNREACHABLE_PG = "postgresql+psycopg://postgres@127.0.0.1:{port}/forgetflow"


def fails_cleanly(args: list[str], setting: str, workspace: Path) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and setting in result.output, result.output
    assert not (workspace / "data-registry").exists()
    assert not (workspace / "ledger.db").exists()
    return result.output


@pytest.mark.parametrize("which,setting", [("secret", "AWS_SECRET_ACCESS_KEY"),
                                           ("key", "AWS_ACCESS_KEY_ID")])
def test_wrong_s3_credentials(seaweed_s3: S3Server, workspace: Path, which: str, setting: str,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = seaweed_s3.use(monkeypatch)
    monkeypatch.setenv(setting, "not-the-right-one")
    fails_cleanly(["data", "prepare"], setting, workspace)
    assert bucket not in {b["Name"] for b in seaweed_s3.client().list_buckets()["Buckets"]}


def test_missing_s3_endpoint(moto_s3: S3Server, workspace: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    moto_s3.use(monkeypatch)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_ports(1)[0]}")
    fails_cleanly(["train"], "MLFLOW_S3_ENDPOINT_URL", workspace)


@pytest.mark.parametrize("bucket", ["Bad_Bucket", "ab", "x" * 64])
def test_invalid_bucket_name(moto_s3: S3Server, workspace: Path, bucket: str,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    moto_s3.use(monkeypatch, bucket=bucket)
    out = fails_cleanly(["data", "prepare"], "FORGETFLOW_S3_URL", workspace)
    assert repr(bucket) in out


def test_unreachable_ledger_database(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGETFLOW_DB_URL", UNREACHABLE_PG.format(port=free_ports(1)[0]))
    fails_cleanly(["request", "submit", "--kind", "class", "--label", "1"],
                  "FORGETFLOW_DB_URL", workspace)
    fails_cleanly(["request", "list"], "FORGETFLOW_DB_URL", workspace)


def test_unreachable_mlflow_database(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", UNREACHABLE_PG.format(port=free_ports(1)[0]))
    fails_cleanly(["train"], "MLFLOW_TRACKING_URI", workspace)
    fails_cleanly(["process"], "MLFLOW_TRACKING_URI", workspace)


def test_no_registered_version_without_artifacts(seaweed_s3: S3Server, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials revoked between runs: registration refuses before a run or version."""
    seaweed_s3.use(monkeypatch)
    env = build_trained_workspace(tmp_path / "ws2", epochs=1)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    registry = Registry(Workspace.from_env())
    ref = registry.ref("ff-test", "champion")
    model, spec, recipe = registry.load(ref)
    experiment = registry.client.get_run(ref.run_id).info.experiment_id
    runs_before = len(registry.client.search_runs([experiment]))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "revoked")
    with pytest.raises(StackError, match="AWS_SECRET_ACCESS_KEY"):
        registry.register("ff-test", model, spec, recipe, dict.fromkeys(
            ("kind", "parent_version", "deletion_request_ids", "data_version",
             "parent_data_version", "forget_set_size", "forget_set_sha256", "method", "gate"),
            "x"), {}, [])
    assert [r.version for r in registry.versions("ff-test")] == ["1"]
    assert len(registry.client.search_runs([experiment])) == runs_before
