"""Flow `process_deletions`: pending requests of a model, as bounded batches (docs/design.md §1).

Every durable effect is keyed by the batch id and safe to repeat, and each step boundary is a
`lease.step`: a rerun after a crash resumes the batch and repeats nothing it already did.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.ledger import BatchBusy, Ledger, OpenBatch
from forgetflow.adapters.stack import check_stack
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.ids import forget_sha256
from forgetflow.core.params import Params
from forgetflow.pipeline import lineage
from forgetflow.pipeline.audit import AuditFailed, audit
from forgetflow.pipeline.batch import (
    forget_rows,
    forgotten_classes,
    plan_batch,
    plan_stages,
    without_ids,
)
from forgetflow.pipeline.lease import Lease, LeaseLost, owner_id
from forgetflow.pipeline.promotion import PromotionRefused, promote
from forgetflow.pipeline.resume import recorded_verdict
from forgetflow.pipeline.settings import load_checked
from forgetflow.pipeline.sla import OverdueRequests, overdue
from forgetflow.pipeline.timing import Stopwatch
from tasks import ledger as ledger_tasks
from tasks.data import commit_batch_version, load_data, planning_base
from tasks.figures import batch_figures
from tasks.models import gate, unlearn_batch
from tasks.registry import batch_version, load_parent, metrics_of, offer_challenger, register_batch


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
    check_stack(Workspace.from_env())  # deployment runs skip the CLI: fail before the ledger
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
        return fail_if_overdue(ledger, params, name,
                               {"batch_id": None, "request_ids": [], "model_name": name})
    passed = [b for b in done if b.get("gate") == "passed"]
    if params.promote.auto and passed:  # requests are done once the champion serves them
        try:
            done[-1]["promoted"] = promote(Workspace.from_env(), name,
                                           passed[-1]["model_version"],
                                           params.registry.serving_aliases)
        except PromotionRefused as exc:
            get_run_logger().warning("promote.auto: %s", exc)
            done[-1]["promoted"] = {"refused": str(exc)}
    return fail_if_overdue(ledger, params, name,
                           {**done[-1], "batches": done} if len(done) > 1 else done[-1])


def fail_if_overdue(ledger: Ledger, params: Params, name: str,
                    result: dict[str, Any]) -> dict[str, Any]:
    """The compliance scan, then due dates: a violated invariant fails the run loudly, and it
    ends failed while any request is past its due date (sla.days), so the orchestrator's
    failure notifications reach someone; the result rides on the error."""
    scan = audit(Workspace.from_env(), params, name, verify_receipts=False, sla=False)
    if not scan["clean"]:
        raise AuditFailed("; ".join(f"{v['invariant']}: {v['detail']}"
                                    for v in scan["violations"]))
    late = [r.id for r in overdue(ledger, params.sla, name)]
    if late:
        raise OverdueRequests(late, result)
    return result


def run_batch(opened: OpenBatch, params: Params, lease: Lease) -> dict[str, Any]:
    """One batch, new or resumed; an error fails its open requests (a kill leaves them to
    the next run)."""
    try:
        return _run_batch(opened, params, lease)
    except LeaseLost:
        raise  # another process owns the batch now
    except Exception as exc:
        ledger_tasks.ledger().fail_batch(opened.batch_id, f"batch error: {exc}",
                                         owner=lease.owner)
        raise


def _run_batch(opened: OpenBatch, params: Params, lease: Lease) -> dict[str, Any]:
    log, watch, ledger = get_run_logger(), Stopwatch(), ledger_tasks.ledger()
    name, batch_id = opened.model_name, opened.batch_id
    log.info("batch %s (%s): requests %s", batch_id, "resumed" if opened.resumed else "new",
             opened.request_ids)
    lease.step("claimed")

    # 1. the parent model (champion, or a newer challenger), recorded so a resume reuses it
    with watch.lap("load_parent"):
        parent_ref, parent, spec, recipe = load_parent(name, opened.parent_version)
    batch: dict[str, Any] = {"batch_id": batch_id, "model_name": name,
                             "request_ids": opened.request_ids,
                             "parent_version": parent_ref.version,
                             "parent_data_version": parent_ref.tag("data_version")}
    ledger.update_batch(batch_id, owner=lease.owner, parent_version=parent_ref.version,
                        parent_data_version=batch["parent_data_version"])
    lease.step("parent-recorded")

    # 2. extract the forget set from the data version the batch plans against
    with watch.lap("load_data"):
        base, base_bundle, base_manifest = load_data(planning_base(batch_id))
        parent_bundle = base_bundle if base.tag == batch["parent_data_version"] \
            else load_data(batch["parent_data_version"])[1]
    lease.step("data-loaded")
    with watch.lap("extract"):
        plan = plan_batch(ledger_tasks.open_requests(opened.request_ids), base_manifest,
                          base_bundle)
    lease.step("planned")
    ledger_tasks.reject(plan.rejected, lease.owner)
    lease.step("rejected")
    if not plan.accepted:
        ledger.finish_batch(batch_id, "rejected", "rejected", None, None, owner=lease.owner)
        return {**batch, "request_ids": [], "rejected": plan.rejected, "gate": None}
    accepted = sorted(plan.accepted)

    # 3. new data version without the dropped rows (git commit + tag, dvc push), once
    with watch.lap("data_version"):
        version = commit_batch_version(base, base_manifest, plan.selection.drop_ids,
                                       plan.request_of(), batch_id, accepted)
    ledger.update_batch(batch_id, owner=lease.owner, data_version=version.tag)
    lease.step("data-version-recorded")
    with watch.lap("extract"):
        bundle = without_ids(base_bundle, plan.selection.drop_ids)
        forget = forget_rows(parent_bundle, bundle)
        stages = plan_stages(plan, forget, base_bundle.third_party, bundle.third_party)
        sha = forget_sha256(forget.ids)
    batch.update(request_ids=accepted, rejected=plan.rejected, data_version=version.tag,
                 forget_set_size=len(forget), forget_set_sha256=sha)
    lease.step("forget-set-built")

    # 4-5. unlearn and gate, escalating while it fails (unless a killed run registered it)
    ref = batch_version(name, batch_id)
    if ref is None:
        decisions = []
        for method, config in params.unlearn.attempts():
            with watch.lap("unlearn"):
                outcome = unlearn_batch(method, config, parent, spec, recipe, stages,
                                        bundle.train, params.unlearn.seed)
            lease.step("unlearned")
            with watch.lap("evaluate"):
                verdict = gate(outcome.model, parent, stages, bundle, forgotten_classes(plan),
                               params.gate, params.evaluation, params.unlearn.seed,
                               base_bundle.holdout, exact=method == "retrain")
            lease.step("gated")
            decisions.append({"rung": len(decisions) + 1, "method": method, "config": config,
                              "seconds": outcome.seconds, "gate": verdict.verdict,
                              "checks": verdict.checks})
            log.info("attempt %d (%s): gate %s", len(decisions), method, verdict.verdict)
            if verdict.passed:
                break
        compute = sum(d["seconds"] for d in decisions)
        metrics = {**verdict.metrics, "unlearn_seconds": outcome.seconds,
                   "unlearn_seconds_total": compute}
        ledger.update_batch(batch_id, owner=lease.owner, decisions=decisions,
                            gate=verdict.verdict)
        lease.step("decisions-recorded")

        # 6. register the version with lineage tags (exactly one per batch)
        repo = DataRepo(Workspace.from_env())
        tags = lineage.unlearned_tags(
            batch_id=batch_id, request_ids=accepted, parent_version=parent_ref.version,
            parent_data_version=batch["parent_data_version"], data_version=version.tag,
            forget_size=len(forget), forget_sha256=sha, method=outcome.method,
            gate=verdict.verdict, escalations=len(decisions) - 1, data_repo=str(repo.path))
        with watch.lap("register"):
            ref = register_batch(name, batch_id, outcome.model, spec, recipe, tags, metrics,
                                 lineage.data_inputs(repo, version, bundle, forget.ids, sha),
                                 lineage.run_params(params, outcome.method, outcome.config))
        model = outcome.model
    else:
        metrics = metrics_of(ref)
        verdict, decisions = recorded_verdict(ledger.batch(batch_id), ref.tag("gate"), metrics)
        compute = sum(d["seconds"] for d in decisions)
        model = load_parent(name, ref.version)[1]
    ledger.update_batch(batch_id, owner=lease.owner, model_version=ref.version)
    lease.step("model-recorded")
    if verdict.passed:
        offer_challenger(name, ref.version)
    lease.step("alias-set")
    batch.update(model_version=ref.version, method=ref.tag("method"), gate=verdict.verdict,
                 metrics=metrics, rung=len(decisions) if verdict.passed else None)

    # 7. figures and the batch report, then close the requests in one transaction
    with watch.lap("figures"):
        figures_md = batch_figures(ref.run_id, parent, model, stages, bundle,
                                   forgotten_classes(plan), verdict.checks)
    lease.step("figures-logged")
    create_markdown_artifact(lineage.batch_markdown(batch, verdict.checks, decisions)
                             + figures_md, key=f"deletion-batch-{batch_id.lower()}",
                             description=f"deletion batch {batch_id}")
    lease.step("artifact-published")
    timings = batch["timings"] = watch.report(compute)
    record = {"data_version": version.tag, "gate": verdict.verdict, "decisions": decisions,
              "metrics": {**metrics, **{f"seconds.{k}": v for k, v in timings.items()}}}
    if verdict.passed:
        # earlier gate-failed requests whose rows this version no longer carries count too;
        # all become `unlearned`: `done` (with its receipt) waits for the serving aliases
        covered = sorted(ledger.uncovered(name, version.number))
        ledger.finish_batch(batch_id, "done", "unlearned", None, ref.version,
                            covered={r: None for r in covered}, fields=record,
                            owner=lease.owner)
        batch["completed_earlier_requests"] = covered
    else:
        failed = [c["check"] for c in verdict.checks if not c["passed"]]
        ledger.finish_batch(batch_id, "failed", "failed",
                            f"gate failed after {len(decisions)} attempt(s): "
                            f"{', '.join(failed)}; the rows are out of data {version.tag}; the "
                            "next batch that passes the gate completes this request",
                            ref.version, fields=record, owner=lease.owner)
    lease.step("batch-finished")
    return batch
