"""Ledger tasks: open (resume or claim) a batch, load its requests, reject. Short SQL
transactions; reads are retried on lock contention, claims are not (a claim is one
transaction and either happened or not)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from forgetflow.adapters.ledger import Ledger, OpenBatch, RequestView
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.forget import ForgetRequest
from forgetflow.core.params import BatchParams
from forgetflow.core.requests import DeletionRequest, forget_request_from

IO = {"cache_policy": NO_CACHE, "persist_result": False}
RETRY = {"retries": 3, "retry_delay_seconds": 2, **IO}


def ledger() -> Ledger:
    return Ledger.open(Workspace.from_env().ledger_url)


@task(name="open-batch", **IO)
def open_batch(model_name: str, batch_id: str, owner: str,
               settings: BatchParams) -> OpenBatch | None:
    """A batch whose lease expired first (its process died), else up to
    `batch.max_requests` pending requests; None when there is nothing to do."""
    lease = settings.lease()
    return (ledger().resume_expired(model_name, owner, lease)
            or ledger().claim(model_name, batch_id, owner, lease, settings.max_requests))


@task(name="load-open-requests", **RETRY)
def open_requests(request_ids: list[int]) -> dict[int, ForgetRequest]:
    """The batch's requests that are still open, rebuilt as core requests."""
    views = [ledger().get(rid) for rid in request_ids]
    return {r.id: forget_request_from(r.kind, r.payload, ledger().sample_ids(r.id)
                                      if r.kind == "samples" else [])
            for r in views if r.status == "processing"}


@task(name="reject-requests", **RETRY)
def reject(reasons: dict[int, str], owner: str | None = None) -> None:
    """Refused (LeaseLost) unless `owner` still holds the batch's lease."""
    ledger().reject_open(reasons, owner)


@task(name="submit-request", **RETRY)
def submit(request: DeletionRequest, model_name: str) -> tuple[RequestView, bool]:
    return ledger().submit(request, model_name)
