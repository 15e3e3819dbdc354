"""`process --json` keeps its output when the run ends failed after the batches ran (the
end-of-run audit found a violation) and turns a batch that raised into one `error:` line and
an `{"error"}` object on stdout, exit 1, with the batch and its requests recorded as failed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import tasks.batch
from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app

runner = CliRunner()


def submit(label: int) -> int:
    result = runner.invoke(app, ["request", "submit", "--kind", "class", "--label", str(label),
                                 "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["id"]


def test_an_audit_failure_after_the_batch_keeps_the_batch_json(
        prefect_harness: None, trained: dict, params_file: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    params = yaml.safe_load(params_file.read_text())
    params["registry"]["serving_aliases"] = ["champion", "canary"]  # canary points nowhere
    canary = params_file.with_name("canary.yaml")
    canary.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("FORGETFLOW_PARAMS", str(canary))
    rid = submit(2)
    result = runner.invoke(app, ["process", "--json"])
    assert result.exit_code == 1, result.output
    batch = json.loads(result.stdout)  # the whole stdout is the batch's JSON
    assert batch["request_ids"] == [rid] and batch["gate"] in ("passed", "failed")
    assert batch["batch_id"] and batch["model_version"]
    assert "error: serving-untainted" in result.stderr and "Traceback" not in result.stderr


def test_a_batch_that_raises_ends_in_one_error_line(
        prefect_harness: None, trained: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the accelerator vanished\nsecond line of detail")

    monkeypatch.setattr(tasks.batch, "unlearn_batch", broken)
    rid = submit(4)
    result = runner.invoke(app, ["process", "--json"])
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout)
    assert out["error"].startswith("the batch run failed: RuntimeError: the accelerator vanished")
    assert "second line" not in out["error"]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the batch run failed") and "request list" in last
    request = Ledger(Workspace.from_env().ledger_url).get(rid)
    assert request.status == "failed"
    assert request.reason == "batch error: RuntimeError: the accelerator vanished"
