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
