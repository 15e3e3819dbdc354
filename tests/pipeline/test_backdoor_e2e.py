"""A backdoor study through the real CLI and flows: poison the data (project-owned rows in
the data registry), train, request the trigger's removal, and check the batch found the
poisoned rows, killed the backdoor and physically dropped those rows from the next version."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import dvc.api
import mlflow
from typer.testing import CliRunner

from flows.process_deletions import process_deletions
from flows.train import train_flow
from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app
from forgetflow.core.data.manifest import Manifest

TRIGGER = {"pattern": "checkerboard", "size": 3, "value": 1.0, "position": "bottom-right",
           "margin": 1, "target": 0}


def cli(*args: str) -> dict:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_backdoor_batch(prefect_harness: None, workspace: Path, tmp_path: Path) -> None:
    trigger = tmp_path / "trigger.json"
    trigger.write_text(json.dumps(TRIGGER))
    assert cli("data", "prepare")["data_version"] == "v1"
    poisoned = cli("data", "poison", "--trigger", str(trigger), "--rate", "0.05")
    assert poisoned["data_version"] == "v2" and poisoned["poison"]["count"] > 30
    assert train_flow()["data_version"] == "v2"

    rid = cli("request", "submit", "--kind", "backdoor", "--trigger", str(trigger))["id"]
    batch = process_deletions()
    assert batch["gate"] == "passed" and batch["request_ids"] == [rid], batch
    assert batch["metrics"]["asr"] <= 0.2
    assert batch["forget_set_size"] == poisoned["poison"]["count"]

    repo = DataRepo(Workspace.from_env())
    v2 = repo.version("v2")
    ids_v2 = set(repo.overlay(v2).ids.tolist())
    with dvc.api.open("manifest.csv", repo=str(repo.path), rev="v3") as fh:
        assert not ids_v2 & set(Manifest.read_csv(fh).ids.tolist())
    tracked = subprocess.run(["git", "-C", str(repo.path), "ls-tree", "-r", "--name-only",
                              "v3"], capture_output=True, text=True, check=True).stdout
    assert "poison/train.npz.dvc" not in tracked and repo.version("v3").info["poison"] is None
    client = mlflow.MlflowClient(f"sqlite:///{workspace.parent / 'mlflow.db'}")
    mv = client.get_model_version(batch["model_name"], batch["model_version"])
    assert mv.tags["forgetflow.data_version"] == "v3"
    assert "asr" in client.get_run(mv.run_id).data.metrics

    result = CliRunner().invoke(app, ["data", "gc"])
    assert result.exit_code == 0, result.output
    assert cli("promote")["champion"] == batch["model_version"]
