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
        (["--epsilon-models", "1"], "--epsilon-models"),
        (["--epsilon-models", "100000"], "--epsilon-models"),
        (["--time-matched", "finetune,nosuch"], "unknown time-matched method"),
        (["--epsilon-methods", "nosuch"], "unknown epsilon method"),
        (["--train-limit", "5"], "--train-limit"),
    ],
)
def test_bench_rejects_bad_input_and_writes_nothing(tmp_path: Path, args: list[str],
                                                    message: str) -> None:
    out, cache = tmp_path / "out.json", tmp_path / "cache"
    base = ["bench", "--dataset", "digits", "--seeds", "1", "--epochs", "1",
            "--cache-dir", str(cache), "--json", str(out)]
    result = runner.invoke(app, base + args)
    assert result.exit_code == 2
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
            "--methods", "dm,finetune_head", "--time-matched", "finetune_head", "--seeds", "2",
            "--epochs", "3", "--epsilon-models", "2", "--cache-dir", str(tmp_path / "cache"),
            "--json", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    rows = data["rows"]
    expected = ["dm", "finetune_head", "finetune_head@dm_time", "identity", "logit_mask",
                "retrain", "retrain_fresh"]
    assert sorted({r["method"] for r in rows}) == expected
    assert len(rows) == 2 * len(expected)
    keys = {"method", "seed", "forget_acc", "retain_acc", "test_acc", "test_acc_remaining",
            "mia_efficacy", "mia_loss_acc", "third_party_auc", "asr", "relearn_acc",
            "probe_acc", "seconds", "avg_gap", "speedup"}
    for row in rows:
        assert keys <= set(row)
        assert row["asr"] is None  # not a backdoor scenario
        for key in ("forget_acc", "retain_acc", "test_acc", "mia_efficacy", "relearn_acc"):
            assert 0.0 <= row[key] <= 1.0
    retrain = [r for r in rows if r["method"] == "retrain"]
    assert all(r["avg_gap"] == 0.0 and r["forget_acc"] <= 0.05 for r in retrain)
    first = {r["method"]: r for r in rows if r["seed"] == 0}
    assert first["retrain"].get("epsilon_score") is None  # the reference itself
    for name in ("retrain_fresh", "dm", "identity", "logit_mask"):
        assert 0.0 <= first[name]["epsilon_score"] <= 1.0
        assert first[name]["challenge_score"] <= first[name]["epsilon_score"] * 1.5
    assert first["identity"]["epsilon_score"] < first["retrain_fresh"]["epsilon_score"]
    assert "| dm |" in result.output and "| logit_mask |" in result.output
    assert set(data["load_average"]) == {"before", "after"}
    # a second run reuses the cached original/Retrain models and records it
    again = runner.invoke(app, args + ["--json", str(tmp_path / "again.json")])
    assert again.exit_code == 0
    seeds = json.loads((tmp_path / "again.json").read_text())["seeds"]
    assert all(s["original_cached"] and s["retrain_cached"] for s in seeds)


def test_bench_runs_on_an_image_folder(tmp_path: Path) -> None:
    """The bench takes users' images too (decoded at 3x32x32): Retrain forgets the class."""
    from imagefolders import write_folder

    images = write_folder(tmp_path / "pets, ñ", per_class=40, test_per_class=10)
    out = tmp_path / "out.json"
    result = runner.invoke(app, [
        "bench", "--dataset", f"folder:{images}", "--scenario", "class", "--forget-class", "1",
        "--methods", "dm", "--seeds", "1", "--epochs", "4", "--epsilon-models", "0",
        "--cache-dir", str(tmp_path / "cache"), "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in json.loads(out.read_text())["rows"]}
    assert {"dm", "retrain", "identity"} <= set(rows)
    assert rows["retrain"]["forget_acc"] <= 0.05 < rows["identity"]["forget_acc"]
