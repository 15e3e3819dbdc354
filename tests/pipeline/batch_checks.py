"""Shared by the crash and concurrency tests: a copyable trained workspace, running the real
`forgetflow process` as a subprocess, and the exactly-once checks read back from the ledger,
the MLflow registry and the data repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import mlflow
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from forgetflow.cli.app import app; app()"]
NAME = "ff-test"


def batch_params(tiny: dict[str, Any]) -> dict[str, Any]:
    """The tiny pipeline params with a cheap, always-passing unlearning step: these tests are
    about durability, not forgetting quality."""
    return {**tiny,
            "unlearn": {"method": "dm", "config": {"max_steps": 30, "min_steps": 5},
                        "escalation": []},
            "gate": {"max_third_party_auc": 1.0, "max_forget_acc_class": 1.0, "max_asr": 1.0,
                     "max_test_acc_drop": 1.0, "min_auc_samples": 50,
                     "depth": {"enabled": False}}}


def copy_workspace(template: Path, dest: Path, params: dict[str, Any],
                   extra_env: dict[str, str]) -> dict[str, str]:
    """A private copy of the trained template; returns the environment to run it with."""
    shutil.copytree(template, dest)
    (dest / "params.yaml").write_text(yaml.safe_dump(params))
    return {**os.environ, "FORGETFLOW_HOME": str(dest / "ws"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{dest / 'ws' / 'mlflow.db'}",
            "FORGETFLOW_PARAMS": str(dest / "params.yaml"), "PYTHONPATH": str(ROOT),
            "PREFECT_HOME": str(dest / "prefect"), **extra_env}


def process(env: dict[str, str], timeout: int = 300, **extra: str
            ) -> subprocess.CompletedProcess[str]:
    """`forgetflow process --json` in a fresh interpreter."""
    return subprocess.run([*CLI, "process", "--json"], env={**env, **extra}, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def check_exactly_once(env: dict[str, str], request_ids: list[int]) -> dict[str, Any]:
    """Each request done once, one data version and one model version for its batch, the
    aliases and run tags consistent, and the three stores naming the same versions."""
    from forgetflow.adapters.datarepo import DataRepo
    from forgetflow.adapters.ledger import Ledger
    from forgetflow.adapters.workspace import Workspace

    home = Path(env["FORGETFLOW_HOME"])
    ledger = Ledger(f"sqlite:///{home / 'ledger.db'}")
    batches = ledger.batches(NAME)
    assert [b["status"] for b in batches] == ["done"], batches
    assert not ledger.has_work(NAME)  # nothing left for another run
    batch = batches[0]
    requests = [ledger.get(r) for r in request_ids]
    # unlearned: the challenger is registered, the champion (v1) still serves the rows
    assert {r.status for r in requests} == {"unlearned"}, [r.detail() for r in requests]
    version = batch["model_version"]
    for r in requests:
        assert r.batch_id == batch["id"] and r.model_version == version
        assert r.receipt is None

    uri = env["MLFLOW_TRACKING_URI"]
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions(f"name = '{NAME}'")
    mine = [v for v in versions if v.tags.get("forgetflow.batch_id") == batch["id"]]
    assert len(versions) == 2 and len(mine) == 1 and str(mine[0].version) == version, (
        [(v.version, v.tags.get("forgetflow.batch_id")) for v in versions], version)
    assert mine[0].tags["forgetflow.deletion_request_ids"] == ",".join(map(str, request_ids))
    model = client.get_registered_model(NAME)
    aliases = {k: str(v) for k, v in model.aliases.items()}
    assert aliases == {"champion": "1", "challenger": version}, aliases
    exp = client.get_experiment_by_name("forgetflow")
    runs = client.search_runs([exp.experiment_id],
                              f"tags.`forgetflow.batch_id` = '{batch['id']}'")
    assert [r.info.run_id for r in runs] == [mine[0].run_id]  # no run left without version

    with_env = {k: env[k] for k in ("FORGETFLOW_HOME", "MLFLOW_TRACKING_URI")}
    saved = {k: os.environ.get(k) for k in with_env}
    os.environ.update(with_env)
    try:
        repo = DataRepo(Workspace.from_env())
        assert repo.tags() == ["v1", "v2"]
        v2 = repo.version("v2")
        assert v2.info["batch_id"] == batch["id"] and v2.info["request_ids"] == request_ids
        assert batch["data_version"] == "v2" == mine[0].tags["forgetflow.data_version"]
        git = ["git", "-C", str(repo.path)]
        assert subprocess.run([*git, "status", "--porcelain"], capture_output=True,
                              text=True, check=True).stdout == ""
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        assert head == v2.rev
        with repo._dvc() as dvc:
            assert dvc.status(cloud=True) == {}  # every file of v2 is in the remote
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return batch


def run_points(fn: Callable[[str, Path, Path, str], Any], points: Iterable[str],
               template: Path, base: Path, api_url: str) -> dict[str, Any]:
    """`fn(point, template, base / point, api_url)` for every point, concurrently
    (FORGETFLOW_TEST_WORKERS, default: the CPU count), each in its own copy."""
    workers = int(os.environ.get("FORGETFLOW_TEST_WORKERS", os.cpu_count() or 2))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {p: pool.submit(fn, p, template, base / p, api_url) for p in points}
        return {p: f.result() for p, f in futures.items()}


def switch_params(out: Path, monkeypatch: Any, **sections: dict[str, Any]) -> Path:
    """The current FORGETFLOW_PARAMS with `sections` replaced, written to `out` and made
    current (for a test's next CLI calls)."""
    params = yaml.safe_load(Path(os.environ["FORGETFLOW_PARAMS"]).read_text())
    params.update(sections)
    out.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("FORGETFLOW_PARAMS", str(out))
    return out
