"""Flow `process_deletions`: pending requests of a model, as bounded batches (docs/design.md §1).

Every durable effect is keyed by the batch id and safe to repeat, and each step boundary is a
`lease.step`: a rerun after a crash resumes the batch and repeats nothing it already did.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger

from forgetflow.adapters.ledger import BatchBusy, OpenBatch
from forgetflow.adapters.stack import check_stack
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.params import Params
from forgetflow.pipeline.audit import end_of_run_checks
from forgetflow.pipeline.lease import Lease, LeaseLost, error_line, owner_id
from forgetflow.pipeline.promotion import promote_passed
from forgetflow.pipeline.settings import load_checked
from tasks import batch as steps
from tasks import ledger as ledger_tasks


def new_batch_id() -> str:
    return f"b{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"


@flow(name="process-deletions", log_prints=False)
def process_deletions(model_name: str | None = None,
                      params_file: str | None = None) -> dict[str, Any]:
    """Runbook: resume any batch whose lease expired, then claim pending requests in batches
    of at most `batch.max_requests` until none is left. Returns the last batch, plus every
    batch under `batches` when there were several."""
    params = load_checked(params_file)  # before anything is written
    name = model_name or params.registry.model_name
    ws = Workspace.from_env()
    check_stack(ws)  # deployment runs skip the CLI: fail before the ledger
    owner, ledger, done = owner_id(), ledger_tasks.ledger(), []
    while True:
        try:
            batch = ledger_tasks.open_batch(name, new_batch_id(), owner, params.batch)
        except BatchBusy:
            get_run_logger().info("a batch of %s is running (%s); pending requests wait for "
                                  "the next run", name, ledger.live_batch(name))
            break
        if batch is None:
            break
        with Lease(ledger, batch.batch_id, owner, params.batch.lease()) as lease:
            done.append(run_batch(batch, params, lease))
    if not done:
        get_run_logger().info("no pending deletion requests for %s: nothing to do", name)
        return end_of_run_checks(ws, ledger, params, name,
                                 {"batch_id": None, "request_ids": [], "model_name": name})
    if params.promote.auto:  # requests are done once the serving aliases serve them
        promoted = done[-1]["promoted"] = promote_passed(ws, name, done, params)
        if promoted and "refused" in promoted:  # the version stays the challenger
            get_run_logger().warning("promote.auto: %s", promoted["refused"])
    return end_of_run_checks(ws, ledger, params, name,
                             {**done[-1], "batches": done} if len(done) > 1 else done[-1])


def run_batch(opened: OpenBatch, params: Params, lease: Lease) -> dict[str, Any]:
    """One batch, new or resumed, as its runbook of fenced steps (tasks/batch.py); an error
    fails its open requests (a kill leaves them to the next run)."""
    run = steps.BatchRun(opened, params, lease, ledger_tasks.ledger())
    get_run_logger().info("batch %s (%s): requests %s", opened.batch_id,
                          "resumed" if opened.resumed else "new", opened.request_ids)
    try:
        steps.record_parent(run)                    # 1. parent model
        if not steps.plan_requests(run):            # 2. rows per request, refusals
            return run.batch
        steps.commit_data(run)                      # 3. data version without the rows
        if not steps.registered_before(run):        # (a killed run may have registered)
            steps.unlearn_and_gate(run)             # 4-5. escalation ladder and gate
            steps.register(run)                     # 6. one model version, lineage tags
        steps.record_model(run)                     #    ledger, then `challenger`
        steps.publish(run)                          # 7. figures, batch artifact
        steps.close(run)                            #    requests unlearned or failed
    except LeaseLost:
        raise  # another process owns the batch now
    except Exception as exc:
        run.ledger.fail_batch(opened.batch_id, f"batch error: {error_line(exc)}",
                              owner=lease.owner)
        raise
    return run.batch

