"""Ledger: migrations applied, idempotency, the status machine, large id lists."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy import inspect, text

from forgetflow.adapters.ledger import Ledger, LedgerError
from forgetflow.adapters.ledger_schema import metadata
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.requests import DeletionRequest


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(Workspace.from_env().ledger_url)


def test_migrations_applied_and_match_models(ledger: Ledger) -> None:
    with ledger.engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == "0001"
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert {"deletion_requests", "request_sample_ids", "batches"} <= set(
        inspect(ledger.engine).get_table_names())
    Ledger(Workspace.from_env().ledger_url)  # reopening is a no-op upgrade


def test_idempotency_key_returns_first_request(ledger: Ledger) -> None:
    first, created = ledger.submit(
        DeletionRequest(kind="subject", subject="subj-00001", idempotency_key="k"), "m")
    again, created_again = ledger.submit(
        DeletionRequest(kind="class", label=3, idempotency_key="k"), "m")
    assert created and not created_again
    assert again.id == first.id and again.kind == "subject"
    assert len(ledger.list()) == 1


def test_status_machine(ledger: Ledger) -> None:
    a, _ = ledger.submit(DeletionRequest(kind="class", label=1), "m")
    b, _ = ledger.submit(DeletionRequest(kind="class", label=2), "other")
    claimed = ledger.claim_pending("m", "batch-1")
    assert [r.id for r in claimed] == [a.id] and claimed[0].status == "processing"
    assert ledger.get(b.id).status == "pending"
    with pytest.raises(LedgerError):
        ledger.transition([b.id], "done")
    ledger.transition([a.id], "done", model_version="3", receipts={a.id: {"v": "3"}})
    done = ledger.get(a.id)
    assert (done.status, done.model_version, done.receipt) == ("done", "3", {"v": "3"})
    with pytest.raises(LedgerError):
        ledger.transition([a.id], "failed")
    assert ledger.claim_pending("m", "batch-2") == []
    assert ledger.batch("batch-1")["request_ids"] == [a.id]


def test_large_sample_list_stored_as_rows(ledger: Ledger) -> None:
    ids = [f"digits:train:{i}" for i in range(5000)]
    view, _ = ledger.submit(DeletionRequest(kind="samples", ids=ids), "m")
    assert view.payload == {"count": 5000}
    assert ledger.sample_ids(view.id) == sorted(ids)


@pytest.mark.parametrize("raw", [
    {"kind": "samples"},
    {"kind": "samples", "ids": ["not-an-id"]},
    {"kind": "class", "label": -1},
    {"kind": "class", "label": 2, "subject": "s"},
    {"kind": "erase-all"},
    {"kind": "backdoor", "trigger": {"pattern": "star"}},
    {"kind": "backdoor", "trigger": {"size": 0}},
    {"kind": "backdoor", "trigger": {"position": [-1, 3]}},
])
def test_pydantic_rejects_malformed_requests(raw: dict) -> None:
    with pytest.raises(ValidationError):
        DeletionRequest.model_validate(raw)


def test_interrupted_batches_are_failed_after_a_while(ledger: Ledger) -> None:
    from datetime import timedelta

    a, _ = ledger.submit(DeletionRequest(kind="class", label=1), "m")
    ledger.claim_pending("m", "crashed")
    assert ledger.fail_stale("m", timedelta(hours=1)) == []  # maybe still running
    assert ledger.fail_stale("m", timedelta(seconds=-1)) == [a.id]
    assert ledger.get(a.id).status == "failed" and "interrupted" in ledger.get(a.id).reason
    assert ledger.batch("crashed")["status"] == "failed"
