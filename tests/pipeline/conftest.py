"""Pipeline tier: real SQLite ledger, real git + DVC repos, real MLflow (SQLite), real Prefect
(one test harness per session). Every test gets its own workspace, params and PREFECT_HOME."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

TINY_PARAMS = {
    "data": {"source": "digits", "root": None, "seed": 0, "third_party_fraction": 0.1,
             "subject_size": 20},
    "train": {"model": "cnn", "epochs": 6, "batch_size": 64, "lr": 0.01, "weight_decay": 0.0,
              "seed": 0},
    "unlearn": {"method": "finetune", "config": {},
                "escalation": [{"method": "retrain", "config": {}}]},
    "gate": {"max_third_party_auc": 0.75, "max_forget_acc_class": 0.05, "max_asr": 0.2,
             "max_test_acc_drop": 0.1, "min_auc_samples": 50},
    "registry": {"model_name": "ff-test"},
    "schedule": {"cron": "0 2 * * *"},
    "demo": {"epochs": 2},
}


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the session (starting one costs seconds)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(autouse=True)
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated FORGETFLOW_HOME, MLflow store, PREFECT_HOME, git identity and params."""
    home = tmp_path / "ws"
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(TINY_PARAMS))
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tname = forgetflow tests\n\temail = tests@forgetflow.local\n")
    env = {
        "FORGETFLOW_HOME": str(home), "FORGETFLOW_PARAMS": str(params),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "PREFECT_HOME": str(tmp_path / "prefect"), "GIT_CONFIG_GLOBAL": str(gitconfig),
        "FORGETFLOW_THREADS": os.environ.get("FORGETFLOW_THREADS", "1"),
        "DVC_NO_ANALYTICS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("FORGETFLOW_DB_URL", "FORGETFLOW_S3_URL", "FORGETFLOW_DVC_REMOTE",
                "MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def params_file(workspace: Path) -> Path:
    return workspace.parent / "params.yaml"
