"""Flow `request-deletion`: the UI-triggerable entry. Its parameter is the pydantic
DeletionRequest, so the Prefect UI renders a form with the fields' descriptions and enums."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.registry import Registry
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.params import load_params
from forgetflow.core.requests import DeletionRequest
from forgetflow.pipeline.submission import validate_submission
from tasks import ledger as ledger_tasks


@flow(name="request-deletion", log_prints=False)
def request_deletion(request: DeletionRequest, process_now: bool = False,
                     params_file: str | None = None) -> dict[str, Any]:
    """Validate against the newest data version, store in the ledger, optionally run the
    batch right away (otherwise the nightly deployment picks it up).

    Args:
        request: The deletion request: its kind and the one selector that kind needs.
        process_now: Run the deletion batch right after storing the request instead of
            waiting for the nightly deployment.
        params_file: params.yaml to read (default: FORGETFLOW_PARAMS, then ./params.yaml).
    """
    ws = Workspace.from_env()
    name = request.model_name or load_params(params_file).registry.model_name
    count = validate_submission(request, DataRepo(ws), Registry(ws), name)
    view, created = ledger_tasks.submit(request, name)
    get_run_logger().info("request %s %s (%d training samples)", view.id,
                          "stored" if created else "already existed", count)
    result: dict[str, Any] = {"id": view.id, "status": view.status}
    if process_now:
        from flows.process_deletions import process_deletions

        result["batch"] = process_deletions(name, params_file)
    return result
