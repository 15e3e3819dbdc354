"""Done means gone: a batch leaves its requests `unlearned`; they become `done`, with a
receipt naming the serving version, only once every serving alias points at a version built
without their rows. `promote.auto` promotes at the end of the batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from forgetflow.adapters.registry import Registry
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app

runner = CliRunner()


def cli(*args: str, code: int = 0) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if result.stdout.strip() else {}


def with_params(params_file: Path, monkeypatch: pytest.MonkeyPatch, **sections: dict) -> None:
    params = yaml.safe_load(params_file.read_text())
    for name, values in sections.items():
        params[name] = {**params.get(name, {}), **values}
    out = params_file.with_name("lifecycle.yaml")
    out.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("FORGETFLOW_PARAMS", str(out))


def test_requests_are_done_only_when_every_serving_alias_serves_without_them(
        prefect_harness: None, trained: dict, params_file: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with_params(params_file, monkeypatch, registry={"serving_aliases": ["champion", "canary"]})
    registry = Registry(Workspace.from_env())
    registry.set_alias("ff-test", "canary", "1")  # a second serving alias, on the base model
    rid = cli("request", "submit", "--kind", "class", "--label", "4")["id"]
    batch = cli("process")
    assert batch["gate"] == "passed"
    view = cli("request", "show", str(rid))
    assert (view["status"], view["receipt"]) == ("unlearned", None)
    assert [r["id"] for r in cli("request", "list", "--status", "unlearned")] == [rid]
    assert cli("receipt", "verify", str(rid), code=1)["verified"] is False

    # champion moves, but the canary still serves v1 (trained on the class): not done yet
    promoted = cli("promote")
    assert promoted["champion"] == batch["model_version"] and promoted["completed_requests"] == []
    assert cli("request", "show", str(rid))["status"] == "unlearned"

    # the canary moves too (a second promotion of the same version completes nothing twice)
    registry.set_alias("ff-test", "canary", batch["model_version"])
    assert cli("promote", "--version", batch["model_version"])["completed_requests"] == [rid]
    done = cli("request", "show", str(rid))
    assert done["status"] == "done"
    serving = {s["alias"]: s["model_version"] for s in done["receipt"]["serving"]}
    assert serving == {"champion": batch["model_version"], "canary": batch["model_version"]}
    verified = cli("receipt", "verify", str(rid))
    assert verified["verified"] is True
    assert any("serving canary" in c["name"] and c["ok"] for c in verified["checks"])


def test_promote_auto_ends_the_batch_with_done_requests(
        prefect_harness: None, trained: dict, params_file: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with_params(params_file, monkeypatch, promote={"auto": True})
    rid = cli("request", "submit", "--kind", "class", "--label", "6")["id"]
    batch = cli("process")
    assert batch["gate"] == "passed"
    champion = Registry(Workspace.from_env()).alias("ff-test", "champion")
    assert champion is not None and champion.version == batch["model_version"]
    done = cli("request", "show", str(rid))
    assert done["status"] == "done" and done["receipt"]["serving"][0]["model_version"] == \
        batch["model_version"]
    assert cli("receipt", "verify", str(rid))["verified"] is True


def test_overdue_requests_are_listed_and_fail_the_run(
        prefect_harness: None, trained: dict, params_file: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """sla.days: a request still open past its due date is listed by `request list
    --overdue` and `status`, and the run that processes it still ends failed (exit 1) until
    it is done."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from forgetflow.adapters.ledger import Ledger
    from forgetflow.adapters.ledger_schema import RequestRow

    with_params(params_file, monkeypatch, sla={"days": 30, "warn_days": 7})
    old = cli("request", "submit", "--kind", "class", "--label", "5")["id"]
    soon = cli("request", "submit", "--kind", "class", "--label", "7")["id"]
    ledger = Ledger(Workspace.from_env().ledger_url)
    now = datetime.now(UTC)
    with ledger.engine.begin() as conn:  # as if submitted 31 and 25 days ago
        for rid, age in ((old, 31), (soon, 25)):
            conn.execute(update(RequestRow).where(RequestRow.id == rid)
                         .values(created_at=now - timedelta(days=age)))
    assert [r["id"] for r in cli("request", "list", "--overdue")] == [old]
    status = cli("status")
    assert [r["id"] for r in status["overdue"]] == [old]
    assert [r["id"] for r in status["at_risk"]] == [soon]
    result = runner.invoke(app, ["process", "--json"])
    assert result.exit_code == 1 and "past their due date" in result.stderr
    batch = json.loads(result.stdout)
    assert batch["gate"] == "passed" and sorted(batch["request_ids"]) == [old, soon]
    assert cli("promote")["completed_requests"] == [old, soon]
    assert cli("request", "list", "--overdue") == []
    assert cli("status")["overdue"] == []
