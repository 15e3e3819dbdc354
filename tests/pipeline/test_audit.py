"""`forgetflow audit`: clean after a processed and promoted batch; each invariant, tampered
with, is named as a violation (exit 1), and the workspace is clean again once restored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.ledger_schema import RequestRow
from forgetflow.adapters.registry import TAG, Registry, RegistryError
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app
from forgetflow.core.data.manifest import Manifest
from forgetflow.core.requests import DeletionRequest

from .batches import processed_workspace

runner = CliRunner()


def audit() -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["audit", "--json"])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def violated(invariant: str) -> list[str]:
    code, out = audit()
    found = [v["detail"] for v in out["violations"] if v["invariant"] == invariant]
    assert code == 1 and found, out
    return found


def test_audit_names_each_violated_invariant(prefect_harness: None, tmp_path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    done = processed_workspace(tmp_path / "audit")
    for key, value in done["env"].items():
        monkeypatch.setenv(key, value)
    ws = Workspace.from_env()
    ledger, registry = Ledger(ws.ledger_url), Registry(ws)
    code, out = audit()
    assert code == 0 and out["clean"] is True and out["checked"]["done"] == 2, out
    first = done["requests"][0]

    # 1. champion back on the base model, still trained on the done requests' rows
    with pytest.raises(RegistryError, match="tainted"):  # every alias move refuses it
        registry.set_alias("ff-test", "champion", "1")
    registry.client.set_registered_model_alias("ff-test", "champion", "1")  # behind our back
    assert "still holds rows" in violated("serving-untainted")[0]
    registry.set_alias("ff-test", "champion", done["batch"]["model_version"])

    # 2. a receipt edited after signing, then a done request without one
    receipt = ledger.get(first).receipt
    with ledger.engine.begin() as conn:
        conn.execute(update(RequestRow).where(RequestRow.id == first).values(
            receipt={**receipt, "forget_set_size": 1}))
    assert "does not verify" in violated("receipts")[0]
    with ledger.engine.begin() as conn:
        conn.execute(update(RequestRow).where(RequestRow.id == first).values(receipt=None))
    assert "without a receipt" in violated("receipts")[0]
    with ledger.engine.begin() as conn:
        conn.execute(update(RequestRow).where(RequestRow.id == first).values(receipt=receipt))

    # 3. a second model version claiming the batch
    registry.client.set_model_version_tag("ff-test", "1", TAG + "batch_id",
                                          done["batch"]["batch_id"])
    assert "2 model versions" in violated("one-version-per-batch")[0]
    registry.client.delete_model_version_tag("ff-test", "1", TAG + "batch_id")

    # 3b. a run the batch logged that no version uses (a registration that died half-way)
    experiment = registry.client.get_experiment_by_name("forgetflow").experiment_id
    stray = registry.client.create_run(experiment, tags={TAG + "batch_id":
                                                         done["batch"]["batch_id"]})
    assert stray.info.run_id in violated("no-orphan-runs")[0]
    registry.client.delete_run(stray.info.run_id)
    assert audit()[0] == 0

    # 4. an open request past its due date
    view, _ = ledger.submit(DeletionRequest(kind="class", label=9), "ff-test")
    with ledger.engine.begin() as conn:
        conn.execute(update(RequestRow).where(RequestRow.id == view.id).values(
            created_at=datetime.now(UTC) - timedelta(days=45)))
    assert f"request {view.id} (pending)" in violated("sla")[0]
    ledger.transition([view.id], "rejected", reason="test cleanup")
    assert audit()[0] == 0

    # 5. (last: data versions only move forward) a new data version with a forgotten row back
    repo = DataRepo(ws)
    head = repo.version()
    v1, exclusions = repo.manifest(repo.version("v1")), repo.exclusions(head)
    back = v1.select(v1.ids == sorted(exclusions.ids)[0])
    m = repo.manifest(head)
    tampered = Manifest(*(np.concatenate([getattr(m, c), getattr(back, c)])
                          for c in ("ids", "labels", "split", "subject")))
    with repo.locked():
        repo.commit(tampered, exclusions, None, dict(head.info), "tampered by hand")
    assert "holds 1 excluded row" in violated("data-clean")[0]
