"""Ledger tasks: claim a batch, reject, finish. Short SQL transactions, retried on lock
contention."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from forgetflow.adapters.ledger import Ledger, RequestView
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.forget import ForgetRequest
from forgetflow.core.requests import DeletionRequest, forget_request_from

RETRY = {"retries": 3, "retry_delay_seconds": 2, "cache_policy": NO_CACHE, "persist_result": False}


def _ledger() -> Ledger:
    return Ledger.open(Workspace.from_env().ledger_url)


@task(name="claim-pending-requests", **RETRY)
def claim_pending(model_name: str, batch_id: str) -> list[RequestView]:
    return _ledger().claim_pending(model_name, batch_id)


@task(name="load-request-selectors", **RETRY)
def forget_requests(requests: list[RequestView]) -> dict[int, ForgetRequest]:
    ledger = _ledger()
    return {r.id: forget_request_from(r.kind, r.payload, ledger.sample_ids(r.id) if
                                      r.kind == "samples" else []) for r in requests}


@task(name="reject-requests", **RETRY)
def reject(reasons: dict[int, str]) -> None:
    ledger = _ledger()
    for rid, reason in reasons.items():
        ledger.transition([rid], "rejected", reason=reason)


@task(name="submit-request", **RETRY)
def submit(request: DeletionRequest, model_name: str) -> tuple[RequestView, bool]:
    return _ledger().submit(request, model_name)
