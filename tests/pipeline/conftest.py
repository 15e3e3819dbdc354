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
    "unlearn": {"method": "dm", "config": {},
                "escalation": [{"method": "retrain", "config": {}}]},
    "gate": {"max_third_party_auc": 0.75, "max_forget_acc_class": 0.05, "max_asr": 0.2,
             "max_test_acc_drop": 0.1, "min_auc_samples": 50,
             # digits is too small for a powered relearn comparison on a sample/subject stage:
             # record those as not depth-gated (test_gate_depth checks the default, exact)
             "depth": {"unpowered": "accept"}},
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


def build_trained_workspace(root: Path, epochs: int = 3) -> dict[str, str]:
    """Data v1 + a registered base model as champion, made with the core functions (no
    Prefect), so tests that only need a populated workspace start fast."""
    from forgetflow.adapters.datarepo import DataRepo
    from forgetflow.adapters.dataversions import load_bundle, prepare
    from forgetflow.adapters.registry import Registry
    from forgetflow.adapters.workspace import Workspace
    from forgetflow.core.params import DataParams, TrainParams
    from forgetflow.core.training import recipe_of, train_base
    from forgetflow.pipeline.lineage import base_tags, data_inputs

    env = {"FORGETFLOW_HOME": str(root / "ws"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'ws' / 'mlflow.db'}"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        ws = Workspace.from_env()
        repo = DataRepo(ws)
        version, _ = prepare(repo, DataParams(**TINY_PARAMS["data"]))
        bundle, _ = load_bundle(repo, version)
        recipe = recipe_of(TrainParams(**{**TINY_PARAMS["train"], "epochs": epochs}))
        model, spec, stats = train_base(bundle, recipe)
        registry = Registry(ws)
        name = TINY_PARAMS["registry"]["model_name"]
        ref = registry.register(name, model, spec, recipe, base_tags(version.tag), stats,
                                data_inputs(repo, version, bundle))
        registry.set_alias(name, "champion", ref.version)
    return env


@pytest.fixture(scope="module")
def trained_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return build_trained_workspace(tmp_path_factory.mktemp("trained"))


@pytest.fixture
def trained(workspace: Path, trained_env: dict[str, str],
            monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This module's populated workspace (data v1, champion v1) for the current test."""
    for key, value in trained_env.items():
        monkeypatch.setenv(key, value)
    return trained_env
