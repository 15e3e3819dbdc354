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
from forgetflow.core.params import load_params
from forgetflow.pipeline.batch import (
    forget_sha256,
    forgotten_classes,
    isin_ids,
    plan_batch,
    plan_stages,
)
from forgetflow.pipeline.steps import (
    Stopwatch,
    attempts,
    batch_markdown,
    data_inputs,
    receipt,
    run_params,
    without_ids,
)
from tasks import ledger as ledger_tasks
from tasks.data import commit_batch_version, load_data
from tasks.figures import batch_figures
from tasks.models import gate, unlearn_batch
from tasks.registry import load_parent, register, set_alias

STALE_HOURS = 6  # a batch still `processing` after this long died without recording a result


def new_batch_id() -> str:
    return f"b{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"


@flow(name="process-deletions", log_prints=False)
def process_deletions(model_name: str | None = None,
                      params_file: str | None = None) -> dict[str, Any]:
    """Runbook for one deletion batch; requests become `done` only once a model that passed
    the gate is registered, and any error marks the batch's requests `failed`."""
    log = get_run_logger()
    watch = Stopwatch()
    params = load_params(params_file)
    name = model_name or params.registry.model_name
    ws = Workspace.from_env()
    check_stack(ws)  # deployment runs skip the CLI: fail before the ledger is touched
    stale = Ledger(ws.ledger_url).fail_stale(name, timedelta(hours=STALE_HOURS))
    if stale:
        log.warning("requests %s belonged to an interrupted batch: marked failed", stale)
    if not Ledger(ws.ledger_url).list(status="pending", model_name=name):
        log.info("no pending deletion requests for %s: nothing to do", name)
        return {"batch_id": None, "request_ids": [], "model_name": name}

    # 1. load the parent model (champion, or an unpromoted newer challenger) + its data version
    with watch.lap("load_parent"):
        parent_ref, parent, spec, recipe = load_parent(name)
    batch_id = new_batch_id()
    with watch.lap("ledger"):
        requests = ledger_tasks.claim_pending(name, batch_id)
    ids = [r.id for r in requests]
    batch: dict[str, Any] = {"batch_id": batch_id, "model_name": name, "request_ids": ids,
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
            ledger_tasks.record_batch(batch_id, {"status": "rejected", "finished_at":
                                                 datetime.now(UTC)})
            return {**batch, "request_ids": [], "rejected": plan.rejected, "gate": None}
        accepted = sorted(plan.accepted)

        # 3. new data version without the dropped rows (git commit + tag, dvc push)
        with watch.lap("data_version"):
            version = commit_batch_version(head, head_manifest, plan.selection.drop_ids,
                                           plan.request_of(), batch_id, accepted)
        with watch.lap("extract"):
            bundle = without_ids(head_bundle, plan.selection.drop_ids)
            kept = set(bundle.train.ids.tolist())
            forget = parent_bundle.train.where(~isin_ids(parent_bundle.train.ids, kept))
            stages = plan_stages(plan, forget, head_bundle.third_party, bundle.third_party)
            sha = forget_sha256(forget.ids)
        batch.update(request_ids=accepted, rejected=plan.rejected, data_version=version.tag,
                     forget_set_size=len(forget), forget_set_sha256=sha)

        # 4-5. unlearn and gate; escalate (more budget, then full retrain) while it fails
        decisions = []
        for method, config in attempts(params.unlearn):
            with watch.lap("unlearn"):
                outcome = unlearn_batch(method, config, parent, spec, recipe, stages,
                                        bundle.train)
            with watch.lap("evaluate"):
                verdict = gate(outcome.model, parent, stages, bundle, forgotten_classes(plan),
                               params.gate)
            decisions.append({"method": method, "config": config, "seconds": outcome.seconds,
                              "gate": verdict.verdict, "checks": verdict.checks})
            log.info("attempt %d (%s): gate %s", len(decisions), method, verdict.verdict)
            if verdict.passed:
                break
        compute = sum(d["seconds"] for d in decisions)

        # 6. register the version with lineage tags; challenger only when it passed
        metrics = {**verdict.metrics, "unlearn_seconds": outcome.seconds,
                   "unlearn_seconds_total": compute}
        tags = {"kind": "unlearned", "parent_version": parent_ref.version,
                "deletion_request_ids": ",".join(map(str, accepted)),
                "data_version": version.tag, "parent_data_version": batch["parent_data_version"],
                "forget_set_size": str(len(forget)), "forget_set_sha256": sha,
                "method": outcome.method, "gate": verdict.verdict,
                "data_repo": str(DataRepo(ws).path), "batch_id": batch_id,
                "escalations": str(len(decisions) - 1)}
        inputs = data_inputs(DataRepo(ws), version, bundle, forget.ids, sha)
        with watch.lap("register"):
            ref = register(name, outcome.model, spec, recipe, tags, metrics, inputs,
                           run_params(params, outcome.method, outcome.config))
            if verdict.passed:
                set_alias(name, "challenger", ref.version)
        with watch.lap("figures"):
            figures_md = batch_figures(ref.run_id, parent, outcome.model, stages, bundle,
                                       forgotten_classes(plan))
        batch.update(model_version=ref.version, method=outcome.method, gate=verdict.verdict,
                     metrics=metrics)

        # 7. close the requests: done with receipts, or failed with the gate's reasons
        with watch.lap("ledger"):
            if verdict.passed:
                receipts = {rid: receipt(rid, plan.accepted[rid].kind, batch,
                                         len(plan.train_ids_of[rid])) for rid in accepted}
                ledger_tasks.finish(accepted, "done", None, ref.version, receipts)
            else:
                failed = [c["check"] for c in verdict.checks if not c["passed"]]
                ledger_tasks.finish(accepted, "failed", f"gate failed after {len(decisions)} "
                                    f"attempt(s): {', '.join(failed)}", ref.version)
        timings = batch["timings"] = watch.report(compute)
        ledger_tasks.record_batch(batch_id, {
            "status": "done" if verdict.passed else "failed", "model_version": ref.version,
            "data_version": version.tag, "parent_version": parent_ref.version,
            "parent_data_version": batch["parent_data_version"], "gate": verdict.verdict,
            "decisions": decisions, "metrics": {**metrics, **{f"seconds.{k}": v for k, v in
                                                              timings.items()}},
            "finished_at": datetime.now(UTC)})
        create_markdown_artifact(batch_markdown(batch, verdict.checks, decisions) + figures_md,
                                 key=f"deletion-batch-{batch_id.lower()}",
                                 description=f"deletion batch {batch_id}")
        return batch
    except Exception as exc:
        open_ids = [r.id for r in requests if Ledger(ws.ledger_url).get(r.id).status
                    == "processing"]
        Ledger(ws.ledger_url).transition(open_ids, "failed", f"batch error: {exc}")
        Ledger(ws.ledger_url).update_batch(batch_id, status="failed", error=repr(exc),
                                           finished_at=datetime.now(UTC))
        raise
