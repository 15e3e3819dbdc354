"""The production gate refuses doing nothing: a batch whose method only hides a class
(`logit_mask`) or changes nothing (`identity`) fails with the depth check named, gets no
challenger alias and no receipt; the ladder's next rung (a retrain) then passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.registry import Registry
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app


def _params(params_file: Path, method: str, escalation: list[dict]) -> Path:
    params = yaml.safe_load(params_file.read_text())
    params["unlearn"] = {"method": method, "config": {}, "escalation": escalation}
    out = params_file.with_name(f"{method}.yaml")
    out.write_text(yaml.safe_dump(params))
    return out


def test_a_request_too_small_to_judge_passes_only_an_exact_retrain(
        prefect_harness: None, trained: dict, params_file: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """(First in the module: a class batch that failed earlier would put its rows here too.)
    Below gate.depth.min_rows the relearn comparison has no power: by default (unpowered:
    exact) doing nothing is refused there with that reason and the ladder's retrain passes;
    `unpowered: accept` is the explicit opt-out that records the stage as not depth-gated."""
    from forgetflow.adapters.datarepo import DataRepo

    repo = DataRepo(Workspace.from_env())
    m = repo.manifest(repo.version())
    import numpy as np

    drawn = np.random.default_rng(7).permutation(m.ids[m.split == "train"])[:60].tolist()
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(drawn[:30]) + "\n")
    runner = CliRunner()
    for unpowered, rungs in (("exact", [("identity", "failed"), ("retrain", "passed")]),
                             ("accept", [("identity", "passed")])):
        path = _params(params_file, "identity", [{"method": "retrain", "config": {}}])
        params = yaml.safe_load(path.read_text())
        params["gate"]["depth"] = {"unpowered": unpowered, "min_rows": 50}
        path.write_text(yaml.safe_dump(params))
        monkeypatch.setenv("FORGETFLOW_PARAMS", str(path))
        submitted = runner.invoke(app, ["request", "submit", "--kind", "samples",
                                        "--ids-file", str(ids), "--json"])
        assert submitted.exit_code == 0, submitted.output
        batch = json.loads(runner.invoke(app, ["process", "--json"]).stdout)
        decisions = Ledger(Workspace.from_env().ledger_url).batch(batch["batch_id"])["decisions"]
        assert [(d["method"], d["gate"]) for d in decisions] == rungs, decisions
        depth = [c for c in decisions[0]["checks"] if c.get("depth")]
        assert len(depth) == 1 and depth[0]["passed"] is (unpowered == "accept")
        assert ("unpowered" in depth[0]["note"]) is (unpowered == "exact")
        ids.write_text("\n".join(drawn[30:]) + "\n")


def test_a_logit_mask_fails_the_depth_check_and_the_ladder_retrains(
        prefect_harness: None, trained: dict, params_file: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ladder = [{"method": "retrain", "config": {"epochs": 3}}]
    monkeypatch.setenv("FORGETFLOW_PARAMS", str(_params(params_file, "logit_mask", ladder)))
    runner = CliRunner()
    rid = json.loads(runner.invoke(app, ["request", "submit", "--kind", "class", "--label",
                                         "3", "--json"]).stdout)["id"]
    result = runner.invoke(app, ["process", "--json"])
    assert result.exit_code == 0, result.output
    batch = json.loads(result.stdout)
    assert batch["gate"] == "passed" and batch["rung"] == 2

    ws = Workspace.from_env()
    decisions = Ledger(ws.ledger_url).batch(batch["batch_id"])["decisions"]
    assert [(d["rung"], d["method"], d["gate"]) for d in decisions] == [
        (1, "logit_mask", "failed"), (2, "retrain", "passed")]
    masked = {c["check"]: c for c in decisions[0]["checks"]}
    depth = masked["class-3: depth class_feature_drop"]
    assert not depth["passed"] and depth["value"] == pytest.approx(0.0, abs=1e-9)
    assert masked["class-3: forget_acc"]["passed"]  # the output check alone was fooled
    retrained = {c["check"]: c for c in decisions[1]["checks"]}
    assert retrained["class-3: depth class_feature_drop"]["passed"]
    assert Registry(ws).ref("ff-test", batch["model_version"]).tag("method") == "retrain"
    assert Ledger(ws.ledger_url).get(rid).status == "unlearned"


def test_doing_nothing_is_refused_and_gets_no_receipt(prefect_harness: None, trained: dict,
                                                      params_file: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGETFLOW_PARAMS", str(_params(params_file, "identity", [])))
    runner = CliRunner()
    rid = json.loads(runner.invoke(app, ["request", "submit", "--kind", "class", "--label",
                                         "5", "--json"]).stdout)["id"]
    result = runner.invoke(app, ["process", "--json"])
    assert result.exit_code == 1, result.output
    batch = json.loads(result.stdout)
    assert batch["gate"] == "failed" and batch["rung"] is None
    ws = Workspace.from_env()
    request = Ledger(ws.ledger_url).get(rid)
    assert request.status == "failed" and request.receipt is None
    assert "class-5: depth class_feature_drop" in request.reason
    challenger = Registry(ws).alias("ff-test", "challenger")  # an earlier test's may exist
    assert challenger is None or challenger.version != batch["model_version"]
