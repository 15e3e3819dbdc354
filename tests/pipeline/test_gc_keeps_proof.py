"""`forgetflow data gc` purges what the newest data version does not use, everywhere; the
receipts of earlier requests still verify (the newest exclusion manifest still names their
rows, and what cannot be recomputed any more is said, not faked)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from forgetflow.adapters.datarepo import DataPruned, DataRepo
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app

from .batches import processed_workspace

runner = CliRunner()


def cli(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_receipts_verify_after_data_gc(prefect_harness: None, tmp_path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    done = processed_workspace(tmp_path / "gc")
    for key, value in done["env"].items():
        monkeypatch.setenv(key, value)
    later = cli("request", "submit", "--kind", "class", "--label", "8")["id"]
    assert cli("process")["data_version"] == "v3"
    assert cli("promote")["completed_requests"] == [later]
    result = runner.invoke(app, ["data", "gc"])
    assert result.exit_code == 0, result.output
    repo = DataRepo(Workspace.from_env())
    with pytest.raises(DataPruned):  # the purge really happened
        repo.manifest(repo.version("v1"))
    for rid in [*done["requests"], later]:
        verified = cli("receipt", "verify", str(rid))
        assert verified["verified"] is True, verified["mismatches"]
    first = cli("receipt", "verify", str(done["requests"][0]))
    names = [c["name"] for c in first["checks"]]
    assert any("from v3" in n and "purged by gc" in n for n in names), names
    assert any(n.startswith("forget set not recomputed") for n in names), names


def test_gc_keeps_what_a_next_batch_reads_and_waits_for_an_open_one(
        prefect_harness: None, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A challenger not yet promoted leaves the champion on older data: gc keeps that data
    (the next batch's parent may read it), and refuses to run while a batch is open."""
    from forgetflow.adapters.ledger import Ledger

    done = processed_workspace(tmp_path / "gc2")
    for key, value in done["env"].items():
        monkeypatch.setenv(key, value)
    cli("request", "submit", "--kind", "class", "--label", "8")
    assert cli("process")["data_version"] == "v3"  # challenger v3, champion still on v2
    result = runner.invoke(app, ["data", "gc"])
    assert result.exit_code == 0 and "v2, v3 kept" in result.output, result.output
    repo = DataRepo(Workspace.from_env())
    assert len(repo.manifest(repo.version("v2")).ids) > 0  # the champion's data stays
    with pytest.raises(DataPruned):
        repo.manifest(repo.version("v1"))
    cli("request", "submit", "--kind", "class", "--label", "7")
    ledger = Ledger(Workspace.from_env().ledger_url)
    opened = ledger.claim("ff-test", "b-open", "someone", 600, 10)
    assert opened is not None
    refused = runner.invoke(app, ["data", "gc"])
    assert refused.exit_code == 2 and "b-open is open" in refused.output
    ledger.fail_batch("b-open", "test: released", owner="someone")
