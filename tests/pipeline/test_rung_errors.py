"""A rung of the escalation ladder that raises is a failed rung, not a failed batch: the error
is recorded in the batch's decisions and the next rung runs (a crash in dm on some odd input
used to fail the batch, and every batch after it, since each inherits the rows)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app
from forgetflow.core.unlearn import base
from forgetflow.core.unlearn.base import Unlearner, UnlearnTask


@pytest.fixture
def crashing_method() -> Iterator[str]:
    """A method that raises mid-run, registered for this test only (so tests parametrized over
    every registered method never see it)."""
    name = "crashes_for_test"

    class Crashes(Unlearner):
        def unlearn(self, task: UnlearnTask):
            raise RuntimeError("boom: an input this method cannot handle\nsecond line")

    base.register_unlearner(name)(Crashes)
    try:
        yield name
    finally:
        del base._REGISTRY[name]


def test_a_rung_that_raises_is_recorded_and_the_ladder_climbs(
        prefect_harness: None, trained: dict, params_file: Path, crashing_method: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    params = yaml.safe_load(params_file.read_text())
    params["unlearn"] = {"method": crashing_method, "config": {},
                         "escalation": [{"method": "retrain", "config": {"epochs": 1}}]}
    path = params_file.with_name("crashing.yaml")
    path.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("FORGETFLOW_PARAMS", str(path))
    runner = CliRunner()
    rid = json.loads(runner.invoke(app, ["request", "submit", "--kind", "class", "--label", "4",
                                         "--json"]).stdout)["id"]
    result = runner.invoke(app, ["process", "--json"])
    assert result.exit_code == 0, result.output
    batch = json.loads(result.stdout)
    assert batch["gate"] == "passed" and batch["request_ids"] == [rid]
    decisions = Ledger(Workspace.from_env().ledger_url).batch(batch["batch_id"])["decisions"]
    assert [(d["method"], d["gate"]) for d in decisions] == [(crashing_method, "error"),
                                                           ("retrain", "passed")]
    assert decisions[0]["error"] == "RuntimeError: boom: an input this method cannot handle"
