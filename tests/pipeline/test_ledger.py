"""Ledger: migrations applied, idempotency, the status machine, large id lists."""

from __future__ import annotations

import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy import inspect, text

from forgetflow.adapters.ledger import BatchBusy, Ledger, LedgerError
from forgetflow.adapters.ledger_schema import metadata
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.requests import DeletionRequest


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(Workspace.from_env().ledger_url)


def test_migrations_applied_and_match_models(ledger: Ledger) -> None:
    with ledger.engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == "0002"
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert {"deletion_requests", "request_sample_ids", "batches"} <= set(
        inspect(ledger.engine).get_table_names())
    Ledger(Workspace.from_env().ledger_url)  # reopening is a no-op upgrade


def test_idempotency_key_returns_first_request(ledger: Ledger) -> None:
    first, created = ledger.submit(
        DeletionRequest(kind="subject", subject="subj-00001", idempotency_key="k"), "m")
    again, created_again = ledger.submit(
        DeletionRequest(kind="subject", subject="subj-00001", idempotency_key="k"), "m")
    assert created and not created_again
    assert again.id == first.id and again.kind == "subject"
    assert len(ledger.list()) == 1


@pytest.mark.parametrize("other", [
    DeletionRequest(kind="class", label=3, idempotency_key="k"),
    DeletionRequest(kind="subject", subject="subj-00002", idempotency_key="k"),
    DeletionRequest(kind="samples", ids=["fashion-mnist:train:7"], idempotency_key="k"),
])
def test_a_reused_key_on_a_different_request_is_refused_and_stores_nothing(
        ledger: Ledger, other: DeletionRequest) -> None:
    """A retry with the same key is harmless; the same key on another deletion would drop that
    deletion while saying it exists, so it is an error naming the first request."""
    first, _ = ledger.submit(
        DeletionRequest(kind="samples", ids=["fashion-mnist:train:2", "fashion-mnist:train:1"],
                        idempotency_key="k"), "m")
    with pytest.raises(LedgerError, match=f"already names request {first.id}"):
        ledger.submit(other, "m")
    with pytest.raises(LedgerError, match="different request"):  # same rows, other model
        ledger.submit(DeletionRequest(kind="samples", idempotency_key="k",
                                      ids=["fashion-mnist:train:1", "fashion-mnist:train:2"]),
                      "another-model")
    again, created = ledger.submit(  # the same rows in another order: the same request
        DeletionRequest(kind="samples", ids=["fashion-mnist:train:1", "fashion-mnist:train:2"],
                        idempotency_key="k"), "m")
    assert not created and again.id == first.id
    assert [v.id for v in ledger.list()] == [first.id]


def test_status_machine(ledger: Ledger) -> None:
    a, _ = ledger.submit(DeletionRequest(kind="class", label=1), "m")
    b, _ = ledger.submit(DeletionRequest(kind="class", label=2), "other")
    claimed = ledger.claim("m", "batch-1", "me", 60, 100)
    assert claimed is not None and claimed.request_ids == [a.id]
    assert ledger.get(a.id).status == "processing" and ledger.get(b.id).status == "pending"
    with pytest.raises(LedgerError):
        ledger.transition([b.id], "done")
    with pytest.raises(LedgerError):  # done only through unlearned (a version serves it)
        ledger.transition([a.id], "done")
    ledger.transition([a.id], "unlearned", model_version="3")
    assert ledger.get(a.id).status == "unlearned" and ledger.get(a.id).receipt is None
    ledger.transition([a.id], "done", receipts={a.id: {"v": "3"}})
    done = ledger.get(a.id)
    assert (done.status, done.model_version, done.receipt) == ("done", "3", {"v": "3"})
    with pytest.raises(LedgerError):
        ledger.transition([a.id], "failed")
    ledger.finish_batch("batch-1", "done", "done", None, "3")
    assert ledger.claim("m", "batch-2", "me", 60, 100) is None
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


def test_claims_are_bounded_and_one_live_batch_per_model(ledger: Ledger) -> None:
    ids = [ledger.submit(DeletionRequest(kind="class", label=k % 9), "m")[0].id
           for k in range(5)]
    first = ledger.claim("m", "b1", "p1", 60, 2)
    assert first is not None and first.request_ids == ids[:2]
    with pytest.raises(BatchBusy):  # b1 is live: the rest wait for the next batch
        ledger.claim("m", "b2", "p2", 60, 2)
    assert [ledger.get(i).status for i in ids[2:]] == ["pending"] * 3
    assert ledger.resume_expired("m", "p2", 60) is None  # b1's lease is still valid
    ledger.finish_batch("b1", "done", "done", None, "2")
    assert ledger.finish_batch("b1", "done", "done", None, "2") == []  # repeat: no change
    second = ledger.claim("m", "b2", "p2", 60, 2)
    assert second is not None and second.request_ids == ids[2:4]


def test_expired_lease_is_resumed_once(ledger: Ledger) -> None:
    a, _ = ledger.submit(DeletionRequest(kind="class", label=1), "m")
    ledger.claim("m", "crashed", "dead", 60, 10)
    ledger.update_batch("crashed", parent_version="1")
    assert ledger.renew("crashed", "dead", 0.01)
    time.sleep(0.05)
    assert ledger.has_work("m")
    resumed = ledger.resume_expired("m", "me", 60)
    assert resumed is not None and resumed.resumed and resumed.request_ids == [a.id]
    assert resumed.parent_version == "1"
    assert ledger.resume_expired("m", "other", 60) is None  # mine now
    assert not ledger.renew("crashed", "dead", 60)  # the dead owner lost it
    assert ledger.get(a.id).status == "processing"


def test_gate_failed_requests_are_completed_by_a_covering_batch(ledger: Ledger) -> None:
    """Gate failure: rows out of data v2, requests failed; a later gate-passed batch on v3
    completes them with its receipts."""
    a, _ = ledger.submit(DeletionRequest(kind="class", label=1), "m")
    ledger.claim("m", "b1", "p", 60, 10)
    ledger.update_batch("b1", data_version="v2")
    ledger.finish_batch("b1", "failed", "failed", "gate failed", "2")
    assert ledger.get(a.id).status == "failed"
    assert ledger.uncovered("m", 1) == {}
    b, _ = ledger.submit(DeletionRequest(kind="class", label=2), "m")
    ledger.claim("m", "b2", "p", 60, 10)
    assert ledger.uncovered("m", 3) == {a.id: "v2"}
    ledger.finish_batch("b2", "done", "done", None, "3", {b.id: {"v": "3"}},
                        covered={a.id: {"v": "3", "rows_dropped_in": "v2"}})
    done_a, done_b = ledger.get(a.id), ledger.get(b.id)
    assert (done_a.status, done_a.model_version, done_a.receipt["v"]) == ("done", "3", "3")
    assert "completed by batch b2" in done_a.reason and done_b.status == "done"
    assert ledger.uncovered("m", 3) == {}
