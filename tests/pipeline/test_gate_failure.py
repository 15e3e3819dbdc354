"""A batch whose every attempt fails the gate: escalation is tried and recorded, the version is
registered as failed without the challenger alias, requests end `failed`, promotion refuses;
the next gate-passed batch covers the dropped rows and completes those requests."""

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


def test_failed_gate_escalates_and_fails_requests(prefect_harness: None, trained: dict,
                                                  params_file: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    params = yaml.safe_load(params_file.read_text())
    params["gate"]["max_test_acc_drop"] = -1.0  # no model can pass
    params["unlearn"]["escalation"] = [{"method": "retrain", "config": {"epochs": 1}}]
    strict = params_file.with_name("strict.yaml")
    strict.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("FORGETFLOW_PARAMS", str(strict))
    runner = CliRunner()
    submitted = runner.invoke(app, ["request", "submit", "--kind", "class", "--label", "1",
                                    "--json"])
    rid = json.loads(submitted.stdout)["id"]

    result = runner.invoke(app, ["process", "--json"])
    assert result.exit_code == 1, result.output
    batch = json.loads(result.stdout)
    assert batch["gate"] == "failed" and batch["request_ids"] == [rid]

    ws = Workspace.from_env()
    ledger = Ledger(ws.ledger_url)
    request = ledger.get(rid)
    assert request.status == "failed" and "test_acc_drop" in request.reason
    decisions = ledger.batch(batch["batch_id"])["decisions"]
    assert [d["method"] for d in decisions] == ["dm", "retrain"]
    assert all(d["gate"] == "failed" for d in decisions)

    registry = Registry(ws)
    failed = registry.ref("ff-test", batch["model_version"])
    assert failed.tag("gate") == "failed" and failed.tag("method") == "retrain"
    assert registry.alias("ff-test", "challenger") is None
    refused = runner.invoke(app, ["promote", "--version", failed.version, "--json"])
    assert refused.exit_code == 2 and "did not pass the gate" in refused.stderr
    assert registry.ref("ff-test", "champion").version == "1"

    # the recorded state: rows out of the data version, which the batch row names
    assert ledger.batch(batch["batch_id"])["data_version"] == batch["data_version"] == "v2"
    assert "next batch that passes the gate" in request.reason

    # a later batch that passes the gate covers those rows and completes the request (this
    # test is about the failed state's bookkeeping: the later batch's gate is output-only)
    lenient = yaml.safe_load(params_file.read_text())
    lenient["gate"]["depth"] = {"enabled": False}
    later_params = params_file.with_name("later.yaml")
    later_params.write_text(yaml.safe_dump(lenient))
    monkeypatch.setenv("FORGETFLOW_PARAMS", str(later_params))
    later = json.loads(runner.invoke(app, ["request", "submit", "--kind", "class", "--label",
                                           "2", "--json"]).stdout)["id"]
    passed = runner.invoke(app, ["process", "--json"])
    assert passed.exit_code == 0, passed.output
    second = json.loads(passed.stdout)
    assert second["gate"] == "passed" and second["request_ids"] == [later]
    # class 1's rows, which the failed batch took out of the data, are forgotten as a class
    # (its own stage and output check), not as samples: the version that completes the
    # request must not predict class 1
    checks = {c["check"]: c for c in ledger.batch(second["batch_id"])["decisions"][-1]["checks"]}
    inherited = checks["class-1: forget_acc"]
    assert inherited["passed"] and inherited["value"] <= 0.02
    assert "class-2: forget_acc" in checks and not any(k.startswith("samples") for k in checks)
    for each in (rid, later):  # the failed request is covered by the later version
        covered = ledger.get(each)
        assert covered.status == "unlearned" and covered.receipt is None
        assert covered.model_version == second["model_version"]
    promoted = runner.invoke(app, ["promote", "--json"])
    assert promoted.exit_code == 0, promoted.output
    assert json.loads(promoted.stdout)["completed_requests"] == sorted([rid, later])
    for each in (rid, later):
        done = ledger.get(each)
        assert done.status == "done" and done.model_version == second["model_version"]
        assert done.receipt["model_version"] == second["model_version"]
        assert done.receipt["serving"][0]["model_version"] == second["model_version"]
    assert "completed by batch" in ledger.get(rid).reason
    # the class is gone from the data: asking again says so, not "the forget set is empty"
    again = runner.invoke(app, ["request", "submit", "--kind", "class", "--label", "1"])
    assert again.exit_code == 2 and "class 1 has no training rows left" in again.stderr
