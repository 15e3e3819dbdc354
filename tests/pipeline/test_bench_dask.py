"""`forgetflow bench --runner dask[:ADDRESS]`: the seeds run as Prefect tasks on Dask (a
LocalCluster, or a running scheduler) and give exactly the sequential run's numbers; a
scheduler that does not answer fails before any work, naming --runner, writing nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from distributed import LocalCluster
from s3servers import free_ports
from typer.testing import CliRunner

from forgetflow.bench.harness import BenchConfig
from forgetflow.bench.run import run_bench
from forgetflow.bench.runner import RunnerSpec
from forgetflow.cli.app import app

TINY = ["--dataset", "digits", "--scenario", "class", "--forget-class", "1", "--methods",
        "finetune", "--seeds", "2", "--epochs", "1", "--train-limit", "400"]
TIMING = {"seconds", "speedup"}


def comparable(result: dict[str, Any]) -> Any:
    """Everything but wall-clock timings and the cache bookkeeping."""
    rows = [{k: v for k, v in r.items() if k not in TIMING} for r in result["rows"]]
    seeds = [{k: v for k, v in s.items() if not k.endswith("_cached")} for s in result["seeds"]]
    return rows, seeds


def bench(tmp: Path, name: str, *extra: str) -> dict[str, Any]:
    out = tmp / f"{name}.json"
    result = CliRunner().invoke(app, ["bench", *TINY, "--cache-dir", str(tmp / name),
                                      "--json", str(out), *extra])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


@pytest.mark.slow
def test_dask_runs_match_the_sequential_run(prefect_harness: None, tmp_path: Path) -> None:
    eps = ("--epsilon-models", "2")  # the epsilon score's retrain/unlearn models fan out too
    sequential = bench(tmp_path, "seq", *eps)
    local = bench(tmp_path, "local", "--runner", "dask", *eps)
    assert comparable(local) == comparable(sequential)
    assert any("epsilon" in key for row in local["rows"] for key in row)
    assert not any(s["original_cached"] for s in local["seeds"])  # trained on the workers

    cfg = BenchConfig.build(dataset="digits", data_root=None, scenario="class", forget_class=1,
                            fraction=0.1, subjects=5, trigger_file=None, poison_rate=0.01,
                            methods="finetune", seeds=2, model="cnn", epochs=1,
                            train_limit=400, cache_dir=tmp_path / "remote")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        remote = run_bench(cfg, RunnerSpec.parse(f"dask:{cluster.scheduler_address}"))
    assert comparable(remote) == comparable(bench(tmp_path, "seq-plain"))


def test_dask_address_that_does_not_answer(tmp_path: Path) -> None:
    out, cache = tmp_path / "out.json", tmp_path / "cache"
    address = f"tcp://127.0.0.1:{free_ports(1)[0]}"
    result = CliRunner().invoke(app, ["bench", *TINY, "--cache-dir", str(cache), "--json",
                                      str(out), "--runner", f"dask:{address}"])
    assert result.exit_code == 2, result.output
    assert "--runner" in result.output and address in result.output
    assert not out.exists() and not cache.exists()


def test_malformed_runner(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", *TINY, "--runner", "spark"])
    assert result.exit_code == 2 and "--runner" in result.output
