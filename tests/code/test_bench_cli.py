"""`forgetflow bench`: bad input fails before any work, and a tiny real run has every row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forgetflow.cli.app import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "dm,nosuch"], "unknown method"),
        (["--scenario", "random", "--fraction", "0"], "--fraction"),
        (["--scenario", "random", "--fraction", "1.0"], "--fraction"),
        (["--scenario", "sideways"], "unknown scenario"),
        (["--scenario", "class", "--forget-class", "10"], "outside"),
        (["--dataset", "mnist"], "data-root"),
        (["--dataset", "fashion-mnist", "--data-root", "/nonexistent"], "does not exist"),
        (["--scenario", "backdoor", "--poison-rate", "1.5"], "--poison-rate"),
    ],
)
def test_bench_rejects_bad_input_and_writes_nothing(tmp_path: Path, args: list[str],
                                                    message: str) -> None:
    out, cache = tmp_path / "out.json", tmp_path / "cache"
    base = ["bench", "--dataset", "digits", "--seeds", "1", "--epochs", "1",
            "--cache-dir", str(cache), "--json", str(out)]
    result = runner.invoke(app, base + args)
    assert result.exit_code != 0
    assert message in result.output
    assert not out.exists()
    assert not cache.exists()


def test_bench_rejects_a_trigger_that_does_not_fit(tmp_path: Path) -> None:
    trigger = tmp_path / "t.json"
    trigger.write_text(json.dumps({"pattern": "square", "size": 40, "value": 1.0,
                                   "position": "bottom-right", "margin": 1, "target": 0}))
    out = tmp_path / "out.json"
    result = runner.invoke(app, ["bench", "--dataset", "digits", "--scenario", "backdoor",
                                 "--trigger", str(trigger), "--seeds", "1", "--epochs", "1",
                                 "--cache-dir", str(tmp_path / "c"), "--json", str(out)])
    assert result.exit_code != 0
    assert "outside" in result.output
    assert not out.exists()


def test_bench_tiny_run_reports_every_row_and_metric(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    args = ["bench", "--dataset", "digits", "--scenario", "class", "--forget-class", "3",
            "--methods", "dm,finetune", "--seeds", "2", "--epochs", "3",
            "--cache-dir", str(tmp_path / "cache"), "--json", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert sorted({r["method"] for r in rows}) == ["dm", "finetune", "original", "retrain"]
    assert len(rows) == 8  # 4 methods x 2 seeds
    keys = {"method", "seed", "forget_acc", "retain_acc", "test_acc", "test_acc_remaining",
            "mia_efficacy", "mia_loss_acc", "third_party_auc", "asr", "seconds", "avg_gap",
            "speedup"}
    for row in rows:
        assert keys <= set(row)
        assert row["asr"] is None  # not a backdoor scenario
        for key in ("forget_acc", "retain_acc", "test_acc", "mia_efficacy"):
            assert 0.0 <= row[key] <= 1.0
    retrain = [r for r in rows if r["method"] == "retrain"]
    assert all(r["avg_gap"] == 0.0 and r["forget_acc"] <= 0.05 for r in retrain)
    assert all(r["speedup"] is None for r in rows if r["method"] == "original")
    assert "| dm |" in result.output
    # a second run reuses the cached original/Retrain models and says so
    again = runner.invoke(app, args)
    assert again.exit_code == 0
    assert "from cache" in again.output
