"""`forgetflow status` against a real ledger and MLflow store, and the quick ledger verbs:
they must not import torch, MLflow or Prefect (what made `request list` take seconds)."""

from __future__ import annotations

import json
import subprocess
import sys

import mlflow
from typer.testing import CliRunner

from forgetflow.adapters import registry_sql
from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.registry import Registry
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app

runner = CliRunner()
HEAVY = ("torch", "mlflow", "prefect")


def status() -> dict:
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_status_tracks_requests_aliases_and_batches(trained: dict) -> None:
    empty = status()
    assert empty == {"pending": [], "champion": {"name": "ff-test", "version": "1"},
                     "challenger": None, "last_batch": None, "overdue": [], "at_risk": []}
    for label in ("2", "5"):
        out = runner.invoke(app, ["request", "submit", "--kind", "class", "--label", label])
        assert out.exit_code == 0, out.output
    assert [r["kind"] for r in status()["pending"]] == ["class", "class"]

    ledger = Ledger(Workspace.from_env().ledger_url)
    claimed = ledger.claim("ff-test", "b-test-1", "test", 60, 100)
    ledger.finish_batch("b-test-1", "done", "done", None, "1",
                        fields={"data_version": "v2", "gate": "passed"})
    Registry(Workspace.from_env()).set_alias("ff-test", "challenger", "1")
    now = status()
    assert now["pending"] == [] and now["challenger"] == {"name": "ff-test", "version": "1"}
    batch = now["last_batch"]
    assert batch["id"] == "b-test-1" and batch["status"] == "done"
    assert batch["request_ids"] == claimed.request_ids and batch["gate"] == "passed"

    human = runner.invoke(app, ["status"])
    assert human.exit_code == 0 and human.stdout == ""
    assert "champion v1, challenger v1" in human.stderr and "b-test-1: done" in human.stderr


def test_sql_store_answers_like_the_mlflow_client(trained: dict) -> None:
    """The fast path reads MLflow's tables directly; it must agree with MLflow itself."""
    ws = Workspace.from_env()
    client = mlflow.MlflowClient(ws.mlflow_tracking_uri)
    Registry(ws).set_alias("ff-test", "challenger", "1")
    expected = {a: str(client.get_model_version_by_alias("ff-test", a).version)
                for a in ("champion", "challenger")}
    assert registry_sql.aliases(ws.mlflow_tracking_uri, "ff-test") == expected
    assert registry_sql.model_exists(ws.mlflow_tracking_uri, "ff-test") is True
    assert registry_sql.model_exists(ws.mlflow_tracking_uri, "nope") is False
    assert registry_sql.aliases("http://127.0.0.1:1", "ff-test") is None  # not SQL: client


LEDGER_VERBS = """
import json, sys
from forgetflow.cli.app import app
for args in {calls!r}:
    try:
        app(args)
    except SystemExit as exc:
        assert exc.code in (0, None), (args, exc.code)
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def test_ledger_verbs_import_no_heavy_library(trained: dict) -> None:
    calls = [["request", "submit", "--kind", "class", "--label", "3", "--json"],
             ["request", "list", "--json"], ["request", "show", "1", "--json"],
             ["status", "--json"]]
    proc = subprocess.run([sys.executable, "-c", LEDGER_VERBS.format(calls=calls, heavy=HEAVY)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []


def test_cli_module_imports_no_heavy_library() -> None:
    code = f"import sys, forgetflow.cli.app; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
