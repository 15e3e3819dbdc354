"""`forgetflow train --nproc 2`: the train flow trains on two torchrun/gloo processes and only
this process logs and registers: one run, one registered version, champion."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from forgetflow.cli.app import app

pytestmark = pytest.mark.slow


def test_train_on_two_processes_registers_once(prefect_harness: None, workspace: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORGETFLOW_NPROC", raising=False)
    result = CliRunner().invoke(app, ["train", "--nproc", "2", "--epochs", "2", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["model_version"] == "1" and out["metrics"]["test_acc"] > 0.5
    assert os.environ.get("FORGETFLOW_NPROC") == "2"
    monkeypatch.delenv("FORGETFLOW_NPROC")
    client = mlflow.MlflowClient(f"sqlite:///{workspace.parent / 'mlflow.db'}")
    versions = client.search_model_versions("name = 'ff-test'")
    assert [str(v.version) for v in versions] == ["1"]
    experiment = client.get_experiment_by_name("forgetflow")
    assert len(client.search_runs([experiment.experiment_id])) == 1
    assert client.get_model_version_by_alias("ff-test", "champion").run_id == versions[0].run_id


def test_nproc_must_be_positive(workspace: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--nproc", "0"])
    assert result.exit_code == 2 and "--nproc" in result.output
