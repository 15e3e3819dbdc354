"""The lease a batch holds: the heartbeat keeps it alive past its length, and a batch that
lost it to another process stops at its next step boundary instead of writing on."""

from __future__ import annotations

import time

import pytest

from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.faults import FAULT_ENV, fault_point
from forgetflow.core.requests import DeletionRequest
from forgetflow.pipeline.lease import Lease, LeaseLost


def test_heartbeat_renews_and_a_lost_lease_stops_the_batch() -> None:
    ledger = Ledger(Workspace.from_env().ledger_url)
    ledger.submit(DeletionRequest(kind="class", label=1), "m")
    ledger.claim("m", "b1", "me", 0.6, 10)
    with Lease(ledger, "b1", "me", 0.6) as lease:
        time.sleep(1.5)  # more than two lease lengths
        lease.step("claimed")
        assert ledger.resume_expired("m", "other", 60) is None  # still alive: renewed
        ledger.update_batch("b1", lease_owner="other")  # someone took it over
        time.sleep(0.5)
        with pytest.raises(LeaseLost):
            lease.step("planned")


def test_fault_points_are_named_and_inert_unless_selected(monkeypatch) -> None:
    with pytest.raises(ValueError, match="unknown fault point"):
        fault_point("nowhere")
    monkeypatch.setenv(FAULT_ENV, "batch-finished")
    fault_point("claimed")  # another point: nothing happens


def test_a_stale_worker_can_write_nothing_after_a_takeover() -> None:
    """Fencing: every batch write names its worker and is refused once another worker holds
    the lease; the worker that took over closes the batch."""
    stale, fresh = (Ledger(Workspace.from_env().ledger_url) for _ in range(2))
    rids = [stale.submit(DeletionRequest(kind="class", label=k), "m")[0].id for k in (1, 2)]
    assert stale.claim("m", "b1", "worker-a", 0.2, 10) is not None
    stale.update_batch("b1", owner="worker-a", parent_version="1")  # while it holds the lease
    time.sleep(0.4)  # worker-a stalls past its lease
    assert fresh.resume_expired("m", "worker-b", 60).batch_id == "b1"
    for write in (lambda: stale.update_batch("b1", owner="worker-a", model_version="9"),
                  lambda: stale.reject_open({rids[0]: "no"}, owner="worker-a"),
                  lambda: stale.fail_batch("b1", "stale error", owner="worker-a"),
                  lambda: stale.finish_batch("b1", "done", "done", None, "9",
                                             owner="worker-a")):
        with pytest.raises(LeaseLost, match="lease lost"):
            write()
    assert fresh.batch("b1")["status"] == "processing" and fresh.batch("b1")["model_version"] \
        is None
    assert {fresh.get(r).status for r in rids} == {"processing"}
    assert fresh.finish_batch("b1", "done", "done", None, "2", owner="worker-b") == rids
    with pytest.raises(LeaseLost):  # closed: nobody holds it any more
        stale.finish_batch("b1", "failed", "failed", "late", None, owner="worker-a")
    assert {fresh.get(r).status for r in rids} == {"done"}


def test_a_heartbeat_that_cannot_reach_the_ledger_stops_the_batch(monkeypatch) -> None:
    from sqlalchemy.exc import OperationalError

    ledger = Ledger(Workspace.from_env().ledger_url)
    ledger.submit(DeletionRequest(kind="class", label=1), "m")
    ledger.claim("m", "b1", "me", 0.3, 10)

    def unreachable(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    with Lease(ledger, "b1", "me", 0.3) as lease:
        lease.step("claimed")
        monkeypatch.setattr(ledger, "renew", unreachable)
        time.sleep(0.5)
        with pytest.raises(LeaseLost, match="could not be reached"):
            lease.step("planned")


def test_leases_run_on_the_database_clock_not_the_workers(monkeypatch) -> None:
    """A worker whose clock runs an hour behind claims a batch for a minute; one whose clock
    runs an hour ahead must still see that lease as live (by either worker's clock it would
    have expired, or never started)."""
    from datetime import UTC, datetime, timedelta

    from forgetflow.adapters import ledger_batches

    def clock(offset: timedelta):
        return lambda: datetime.now(UTC) + offset

    behind, ahead = (Ledger(Workspace.from_env().ledger_url) for _ in range(2))
    behind.submit(DeletionRequest(kind="class", label=1), "m")
    monkeypatch.setattr(ledger_batches, "utcnow", clock(-timedelta(hours=1)))
    assert behind.claim("m", "b1", "worker-behind", 60, 10) is not None
    assert behind.renew("b1", "worker-behind", 60)
    monkeypatch.setattr(ledger_batches, "utcnow", clock(timedelta(hours=1)))
    assert ahead.resume_expired("m", "worker-ahead", 60) is None
    assert not ahead.has_work("m")
    expires = ahead.batch("b1")["lease_expires_at"]
    expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)  # SQLite: naive UTC
    assert timedelta(seconds=50) < expires - datetime.now(UTC) <= timedelta(seconds=61)
