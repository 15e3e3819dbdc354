"""`forgetflow serve`: the three deployments of docs/design.md §1 served from this process.
prefect.yaml declares the same deployments for work-pool based runs."""

from __future__ import annotations

from prefect import serve
from prefect.client.orchestration import get_client

from flows.process_deletions import process_deletions
from flows.promote import promote_flow
from flows.request import request_deletion
from forgetflow.core.params import load_params
from tasks import DVC_TAG, GPU_TAG


def ensure_concurrency_limits(params_file: str | None = None) -> None:
    """Compute tasks per device and data-registry writers at a time (params concurrency)."""
    limits = load_params(params_file).concurrency
    with get_client(sync_client=True) as client:
        for tag, limit in {GPU_TAG: limits.gpu, DVC_TAG: limits.dvc}.items():
            client.create_concurrency_limit(tag=tag, concurrency_limit=limit)


def deployments(params_file: str | None = None) -> list:
    params = load_params(params_file)
    shared = {"params_file": params_file} if params_file else {}
    return [
        process_deletions.to_deployment(
            name="nightly-deletions", cron=params.schedule.cron, parameters=shared,
            enforce_parameter_schema=True, concurrency_limit=1,  # one batch at a time
            description="Process every pending deletion request as one batch."),
        request_deletion.to_deployment(
            name="deletion-request", parameters=shared, enforce_parameter_schema=True,
            description="Submit a deletion request from the UI form (optionally process now)."),
        promote_flow.to_deployment(
            name="promote", parameters=shared, enforce_parameter_schema=True,
            description="Move champion to the newest gate-passed challenger."),
    ]


def serve_all(params_file: str | None = None) -> None:
    ensure_concurrency_limits(params_file)
    serve(*deployments(params_file))
