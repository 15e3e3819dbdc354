"""Flow `process_deletions`: every pending request of a model, as ONE batch (DESIGN §1)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.stack import check_stack
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.ids import forget_sha256
from forgetflow.pipeline import lineage
from forgetflow.pipeline.batch import (
    forget_rows,
    forgotten_classes,
    plan_batch,
    plan_stages,
    without_ids,
)
from forgetflow.pipeline.settings import load_checked
from forgetflow.pipeline.timing import Stopwatch
from tasks import ledger as ledger_tasks
from tasks.data import commit_batch_version, load_data
from tasks.figures import batch_figures
from tasks.models import gate, unlearn_batch
from tasks.registry import load_parent, register, set_alias


def new_batch_id() -> str:
    return f"b{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"


@flow(name="process-deletions", log_prints=False)
def process_deletions(model_name: str | None = None,
                      params_file: str | None = None) -> dict[str, Any]:
    """Runbook for one deletion batch; requests become `done` only once a model that passed
    the gate is registered, and any error marks the batch's requests `failed`."""
    log = get_run_logger()
    watch = Stopwatch()
    params = load_checked(params_file)
    name = model_name or params.registry.model_name
    ws = Workspace.from_env()
    check_stack(ws)  # deployment runs skip the CLI: fail before the ledger is touched
    ledger = Ledger.open(ws.ledger_url)
    stale = ledger.fail_stale(name, timedelta(seconds=params.batch.lease()))
    if stale:
        log.warning("requests %s belonged to an interrupted batch: marked failed", stale)
    if not ledger.list(status="pending", model_name=name):
        log.info("no pending deletion requests for %s: nothing to do", name)
        return {"batch_id": None, "request_ids": [], "model_name": name}

    # 1. load the parent model (champion, or an unpromoted newer challenger) + its data version
    with watch.lap("load_parent"):
        parent_ref, parent, spec, recipe = load_parent(name)
    batch_id = new_batch_id()
    with watch.lap("ledger"):
        requests = ledger_tasks.claim_pending(name, batch_id)
    batch: dict[str, Any] = {"batch_id": batch_id, "model_name": name,
                             "request_ids": [r.id for r in requests],
                             "parent_version": parent_ref.version,
                             "parent_data_version": parent_ref.tag("data_version")}
    try:
        # 2. extract the forget set from the newest data version
        with watch.lap("load_data"):
            head, head_bundle, head_manifest = load_data()
            parent_bundle = head_bundle if head.tag == batch["parent_data_version"] \
                else load_data(batch["parent_data_version"])[1]
        with watch.lap("extract"):
            plan = plan_batch(ledger_tasks.forget_requests(requests), head_manifest, head_bundle)
        if plan.rejected:
            ledger_tasks.reject(plan.rejected)
            log.warning("rejected requests: %s", plan.rejected)
        if not plan.accepted:
            ledger.finish_batch(batch_id, "rejected", "rejected", None, None)
            return {**batch, "request_ids": [], "rejected": plan.rejected, "gate": None}
        accepted = sorted(plan.accepted)

        # 3. new data version without the dropped rows (git commit + tag, dvc push)
        with watch.lap("data_version"):
            version = commit_batch_version(head, head_manifest, plan.selection.drop_ids,
                                           plan.request_of(), batch_id, accepted)
        with watch.lap("extract"):
            bundle = without_ids(head_bundle, plan.selection.drop_ids)
            forget = forget_rows(parent_bundle, bundle)
            stages = plan_stages(plan, forget, head_bundle.third_party, bundle.third_party)
            sha = forget_sha256(forget.ids)
        batch.update(request_ids=accepted, rejected=plan.rejected, data_version=version.tag,
                     forget_set_size=len(forget), forget_set_sha256=sha)

        # 4-5. unlearn and gate; escalate (more budget, then full retrain) while it fails
        decisions = []
        for method, config in params.unlearn.attempts():
            with watch.lap("unlearn"):
                outcome = unlearn_batch(method, config, parent, spec, recipe, stages,
                                        bundle.train, params.unlearn.seed)
            with watch.lap("evaluate"):
                verdict = gate(outcome.model, parent, stages, bundle, forgotten_classes(plan),
                               params.gate, params.evaluation, params.unlearn.seed,
                               head_bundle.holdout)
            decisions.append({"method": method, "config": config, "seconds": outcome.seconds,
                              "gate": verdict.verdict, "checks": verdict.checks})
            log.info("attempt %d (%s): gate %s", len(decisions), method, verdict.verdict)
            if verdict.passed:
                break
        compute = sum(d["seconds"] for d in decisions)

        # 6. register the version with lineage tags; challenger only when it passed
        metrics = {**verdict.metrics, "unlearn_seconds": outcome.seconds,
                   "unlearn_seconds_total": compute}
        repo = DataRepo(ws)
        tags = lineage.unlearned_tags(
            batch_id=batch_id, request_ids=accepted, parent_version=parent_ref.version,
            parent_data_version=batch["parent_data_version"], data_version=version.tag,
            forget_size=len(forget), forget_sha256=sha, method=outcome.method,
            gate=verdict.verdict, escalations=len(decisions) - 1, data_repo=str(repo.path))
        inputs = lineage.data_inputs(repo, version, bundle, forget.ids, sha)
        with watch.lap("register"):
            ref = register(name, outcome.model, spec, recipe, tags, metrics, inputs,
                           lineage.run_params(params, outcome.method, outcome.config))
            if verdict.passed:
                set_alias(name, "challenger", ref.version)
        with watch.lap("figures"):
            figures_md = batch_figures(ref.run_id, parent, outcome.model, stages, bundle,
                                       forgotten_classes(plan))
        batch.update(model_version=ref.version, method=outcome.method, gate=verdict.verdict,
                     metrics=metrics)

        # 7. close the requests: done with receipts, or failed with the gate's reasons
        timings = batch["timings"] = watch.report(compute)
        record = {"data_version": version.tag,
                  "parent_version": parent_ref.version,
                  "parent_data_version": batch["parent_data_version"], "gate": verdict.verdict,
                  "decisions": decisions,
                  "metrics": {**metrics, **{f"seconds.{k}": v for k, v in timings.items()}}}
        with watch.lap("ledger"):
            if verdict.passed:
                receipts = lineage.receipts(ws, ref, batch, accepted)
                ledger.finish_batch(batch_id, "done", "done", None, ref.version, receipts,
                                    **record)
            else:
                failed = [c["check"] for c in verdict.checks if not c["passed"]]
                ledger.finish_batch(batch_id, "failed", "failed",
                                    f"gate failed after {len(decisions)} attempt(s): "
                                    f"{', '.join(failed)}", ref.version, **record)
        create_markdown_artifact(lineage.batch_markdown(batch, verdict.checks, decisions)
                                 + figures_md,
                                 key=f"deletion-batch-{batch_id.lower()}",
                                 description=f"deletion batch {batch_id}")
        return batch
    except Exception as exc:
        ledger.fail_batch(batch_id, f"batch error: {exc}")
        raise
