"""The durable steps of one deletion batch, one task each (docs/design.md §1 steps 1-7).

Every step starts by checking the batch's fence (the lease is still ours: `lease.step`
raises LeaseLost otherwise), writes its own ledger state, and ends at a recorded step
boundary, so a rerun after a crash resumes at the first step whose effect is missing. Each
effect is keyed by the batch id and safe to repeat. `BatchRun` carries what the steps hand on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from forgetflow.adapters.datarepo import DataRepo, Exclusions
from forgetflow.adapters.ledger import Ledger, OpenBatch
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.forget import ForgetRequest
from forgetflow.core.ids import forget_sha256
from forgetflow.core.params import Params
from forgetflow.core.requests import forget_request_from
from forgetflow.pipeline import lineage
from forgetflow.pipeline.batch import (
    adopt_rescanned,
    class_reference_pool,
    forget_rows,
    forgotten_classes,
    plan_batch,
    plan_stages,
)
from forgetflow.pipeline.batch import without_ids as cut
from forgetflow.pipeline.lease import Lease, LeaseLost, error_line
from forgetflow.pipeline.resume import recorded_verdict
from forgetflow.pipeline.serving import honour_already_removed
from forgetflow.pipeline.timing import Stopwatch
from tasks import ledger as ledger_tasks
from tasks.data import commit_batch_version, load_data, planning_base
from tasks.figures import batch_figures
from tasks.models import gate, unlearn_batch
from tasks.registry import batch_version, load_parent, metrics_of, offer_challenger, register_batch

STEP = {"cache_policy": NO_CACHE, "persist_result": False}


@dataclass
class BatchRun:
    """One batch in flight: its claim, settings and fence, and what each step produced."""

    opened: OpenBatch
    params: Params
    lease: Lease
    ledger: Ledger
    watch: Stopwatch = field(default_factory=Stopwatch)
    batch: dict[str, Any] = field(default_factory=dict)  # the flow's result for this batch
    state: dict[str, Any] = field(default_factory=dict)  # models, data, plan, verdict, ...

    @property
    def owner(self) -> str:
        return self.lease.owner


@task(name="record-parent", **STEP)
def record_parent(run: BatchRun) -> None:
    """1. The parent model (champion, or a newer challenger), recorded so a resume reuses it."""
    run.lease.check()  # the fence, before this step writes anything
    run.lease.step("claimed")
    o, s = run.opened, run.state
    with run.watch.lap("load_parent"):
        s["parent_ref"], s["parent"], s["spec"], s["recipe"] = load_parent(
            o.model_name, o.parent_version)
    run.batch.update(batch_id=o.batch_id, model_name=o.model_name, request_ids=o.request_ids,
                     parent_version=s["parent_ref"].version,
                     parent_data_version=s["parent_ref"].tag("data_version"))
    run.ledger.update_batch(o.batch_id, owner=run.owner, parent_version=run.batch[
        "parent_version"], parent_data_version=run.batch["parent_data_version"])
    run.lease.step("parent-recorded")


@task(name="plan-requests", **STEP)
def plan_requests(run: BatchRun) -> bool:
    """2. Each request's rows in the planning data version; refuse what cannot be honoured.
    False: nothing was accepted and the batch is closed as rejected."""
    run.lease.check()  # the fence, before this step writes anything
    s, batch_id = run.state, run.opened.batch_id
    with run.watch.lap("load_data"):
        s["base"], s["base_bundle"], manifest = load_data(planning_base(batch_id))
        s["parent_bundle"], parent = (s["base_bundle"], manifest) if s["base"].tag == run.batch[
            "parent_data_version"] else load_data(run.batch["parent_data_version"])[1:]
    s["manifest"] = manifest
    run.lease.step("data-loaded")
    ws = Workspace.from_env()
    exclusions = DataRepo(ws).exclusions(s["base"])
    # rows the parent trained on that a re-scan dropped (their files were deleted): this
    # batch's forget set holds them anyway, so a request naming them (by id or by subject)
    # is not one for rows "never in the data"
    rescanned = parent.train_rows_missing_from(manifest, frozenset(exclusions.ids))
    requests = ledger_tasks.open_requests(run.opened.request_ids)
    with run.watch.lap("extract"):
        s["plan"] = plan_batch(requests, manifest, s["base_bundle"],
                               frozenset(exclusions.ids) | frozenset(rescanned.ids.tolist()),
                               frozenset(run.ledger.subjects_removed(run.opened.model_name))
                               | frozenset(map(str, rescanned.subject.tolist())))
        adopt_rescanned(s["plan"], requests, rescanned)
    s["plan"].inherited, s["plan"].inherited_ids_of = inherited_requests(run, s["base"].number,
                                                                         exclusions)
    run.lease.step("planned")
    ledger_tasks.reject(s["plan"].rejected, run.owner)
    run.lease.step("rejected")
    if s["plan"].already_removed:  # honoured by the version that removed their rows
        refused = honour_already_removed(ws, run.opened.model_name,
                                         sorted(s["plan"].already_removed), exclusions,
                                         run.params.registry.serving_aliases)
        ledger_tasks.reject(refused, run.owner)
        s["plan"].rejected.update(refused)  # the batch's output lists them too
    if s["plan"].accepted:
        return True
    run.ledger.finish_batch(batch_id, "rejected", "rejected", None, None, owner=run.owner)
    run.batch.update(request_ids=[], rejected=s["plan"].rejected, gate=None)
    return False


def inherited_requests(run: BatchRun, base_number: int, exclusions: Exclusions
                       ) -> tuple[dict[int, ForgetRequest], dict[int, set[str]]]:
    """Class and backdoor requests of failed earlier batches whose rows left the data after
    the parent's data version (so the parent model still holds them), with the ids each
    dropped: this batch's forget set holds those rows, and each is judged by its own
    scenario (a class by the class checks, not as samples)."""
    parent = int(str(run.batch["parent_data_version"]).lstrip("v"))
    found = run.ledger.uncovered(run.opened.model_name, base_number)
    views = [run.ledger.get(rid) for rid, tag in sorted(found.items())
             if int(tag.lstrip("v")) > parent]
    requests = {v.id: forget_request_from(v.kind, v.payload, []) for v in views
                if v.kind in ("class", "backdoor")}
    ids = {rid: {row[0] for row in exclusions.rows if str(rid) in row[1].split(";")}
           for rid in requests}
    return requests, ids


@task(name="commit-data-version", **STEP)
def commit_data(run: BatchRun) -> None:
    """3. The next data version without the dropped rows (once), and the forget set."""
    run.lease.check()  # the fence, before this step writes anything
    s, plan = run.state, run.state["plan"]
    accepted = sorted(plan.accepted)
    with run.watch.lap("data_version"):
        s["version"] = commit_batch_version(s["base"], s["manifest"], plan.selection.drop_ids,
                                            plan.request_of(), run.opened.batch_id, accepted,
                                            run.lease.check)
    run.ledger.update_batch(run.opened.batch_id, owner=run.owner, data_version=s["version"].tag)
    run.lease.step("data-version-recorded")
    with run.watch.lap("extract"):
        s["bundle"] = cut(s["base_bundle"], plan.selection.drop_ids)
        s["forget"] = forget_rows(s["parent_bundle"], s["bundle"])
        pool = class_reference_pool(s["base_bundle"].third_party,
                                    s["parent_bundle"].third_party, forgotten_classes(plan))
        s["stages"] = plan_stages(plan, s["forget"], pool, s["bundle"].third_party)
        s["sha"] = forget_sha256(s["forget"].ids)
    run.batch.update(request_ids=accepted, rejected=plan.rejected,
                     data_version=s["version"].tag, forget_set_size=len(s["forget"]),
                     forget_set_sha256=s["sha"])
    run.lease.step("forget-set-built")


@task(name="unlearn-and-gate", **STEP)
def unlearn_and_gate(run: BatchRun) -> None:
    """4-5. Each rung of `unlearn.escalation` in turn until one passes the gate; the
    decisions are recorded before anything is registered."""
    run.lease.check()  # the fence, before this step writes anything
    s, p = run.state, run.params
    decisions: list[dict[str, Any]] = []
    attempts = p.unlearn.attempts()
    for rung, (method, config) in enumerate(attempts, start=1):
        try:
            outcome, verdict = _attempt(run, method, config)
        except LeaseLost:
            raise
        except Exception as exc:  # a rung that crashes is a failed rung: the ladder climbs
            if rung == len(attempts):
                raise
            decisions.append({"rung": rung, "method": method, "config": config,
                              "seconds": 0.0, "gate": "error", "error": error_line(exc),
                              "checks": []})
            get_run_logger().warning("attempt %d (%s) raised %s", rung, method,
                                     error_line(exc))
            continue
        run.lease.step("gated")
        decisions.append({"rung": len(decisions) + 1, "method": method, "config": config,
                          "seconds": outcome.seconds, "gate": verdict.verdict,
                          "checks": verdict.checks})
        get_run_logger().info("attempt %d (%s): gate %s", len(decisions), method,
                              verdict.verdict)
        if verdict.passed:
            break
    s.update(outcome=outcome, verdict=verdict, decisions=decisions, model=outcome.model,
             compute=sum(d["seconds"] for d in decisions))
    s["metrics"] = {**verdict.metrics, "unlearn_seconds": outcome.seconds,
                    "unlearn_seconds_total": s["compute"]}
    run.ledger.update_batch(run.opened.batch_id, owner=run.owner, decisions=decisions,
                            gate=verdict.verdict)
    run.lease.step("decisions-recorded")


def _attempt(run: BatchRun, method: str, config: dict[str, Any]) -> tuple[Any, Any]:
    """One rung: unlearn with (method, config), then the gate on the result."""
    s, p = run.state, run.params
    with run.watch.lap("unlearn"):
        outcome = unlearn_batch(method, config, s["parent"], s["spec"], s["recipe"],
                                s["stages"], s["bundle"].train, p.unlearn.seed)
    run.lease.step("unlearned")
    with run.watch.lap("evaluate"):
        verdict = gate(outcome.model, s["parent"], s["stages"], s["bundle"],
                       forgotten_classes(s["plan"]), p.gate, p.evaluation, p.unlearn.seed,
                       s["base_bundle"].holdout, exact=method == "retrain")
    return outcome, verdict


@task(name="register-batch-model", **STEP)
def register(run: BatchRun) -> None:
    """6. Exactly one model version per batch, with lineage tags back to its requests."""
    run.lease.check()  # the fence, before this step writes anything
    s, o = run.state, run.opened
    repo = DataRepo(Workspace.from_env())
    tags = lineage.unlearned_tags(
        batch_id=o.batch_id, request_ids=run.batch["request_ids"],
        parent_version=s["parent_ref"].version,
        parent_data_version=run.batch["parent_data_version"], data_version=s["version"].tag,
        forget_size=len(s["forget"]), forget_sha256=s["sha"], method=s["outcome"].method,
        gate=s["verdict"].verdict, escalations=len(s["decisions"]) - 1,
        data_repo=str(repo.path))
    with run.watch.lap("register"):
        s["ref"] = register_batch(
            o.model_name, o.batch_id, s["model"], s["spec"], s["recipe"], tags, s["metrics"],
            lineage.data_inputs(repo, s["version"], s["bundle"], s["forget"].ids, s["sha"]),
            lineage.run_params(run.params, s["outcome"].method, s["outcome"].config),
            run.lease.check)


def registered_before(run: BatchRun) -> bool:
    """A killed run registered this batch's version already: take its verdict from there."""
    s, name = run.state, run.opened.model_name
    ref = batch_version(name, run.opened.batch_id)
    if ref is None:
        return False
    s["ref"], s["metrics"] = ref, metrics_of(ref)
    s["verdict"], s["decisions"] = recorded_verdict(run.ledger.batch(run.opened.batch_id),
                                                    ref.tag("gate"), s["metrics"])
    s["compute"] = sum(d["seconds"] for d in s["decisions"])
    s["model"] = load_parent(name, ref.version)[1]
    return True


@task(name="record-model-version", **STEP)
def record_model(run: BatchRun) -> None:
    """The version in the ledger, then `challenger` on it if it passed the gate."""
    run.lease.check()  # the fence, before this step writes anything
    s, ref = run.state, run.state["ref"]
    run.ledger.update_batch(run.opened.batch_id, owner=run.owner, model_version=ref.version)
    run.lease.step("model-recorded")
    if s["verdict"].passed:
        offer_challenger(run.opened.model_name, ref.version)
    run.lease.step("alias-set")
    run.batch.update(model_version=ref.version, method=ref.tag("method"),
                     gate=s["verdict"].verdict, metrics=s["metrics"],
                     rung=len(s["decisions"]) if s["verdict"].passed else None)


@task(name="publish-batch-report", **STEP)
def publish(run: BatchRun) -> None:
    """7. Figures on the version's run, and the batch's markdown artifact."""
    run.lease.check()  # the fence, before this step writes anything
    s, batch_id = run.state, run.opened.batch_id
    with run.watch.lap("figures"):
        figures_md = batch_figures(s["ref"].run_id, s["parent"], s["model"], s["stages"],
                                   s["bundle"], forgotten_classes(s["plan"]),
                                   s["verdict"].checks)
    run.lease.step("figures-logged")
    create_markdown_artifact(lineage.batch_markdown(run.batch, s["verdict"].checks,
                                                    s["decisions"]) + figures_md,
                             key=f"deletion-batch-{batch_id.lower()}",
                             description=f"deletion batch {batch_id}")
    run.lease.step("artifact-published")


@task(name="close-batch", **STEP)
def close(run: BatchRun) -> None:
    """Close the batch and its requests in one transaction: `unlearned` (with any earlier
    gate-failed request this version covers too; `done` waits for the serving aliases), or
    `failed` naming the failed checks."""
    run.lease.check()  # the fence, before this step writes anything
    s, name, batch_id = run.state, run.opened.model_name, run.opened.batch_id
    verdict, version = s["verdict"], s["version"]
    timings = run.batch["timings"] = run.watch.report(s["compute"])
    record = {"data_version": version.tag, "gate": verdict.verdict,
              "decisions": s["decisions"],
              "metrics": {**s["metrics"], **{f"seconds.{k}": v for k, v in timings.items()}}}
    if verdict.passed:
        covered = sorted(run.ledger.uncovered(name, version.number))
        run.ledger.finish_batch(batch_id, "done", "unlearned", None, s["ref"].version,
                                covered={r: None for r in covered}, fields=record,
                                owner=run.owner)
        run.batch["completed_earlier_requests"] = covered
    else:
        failed = [c["check"] for c in verdict.checks if not c["passed"]]
        run.ledger.finish_batch(
            batch_id, "failed", "failed", f"gate failed after {len(s['decisions'])} "
            f"attempt(s): {', '.join(failed)}; the rows are out of data {version.tag}; the next "
            "batch that passes the gate completes this request", s["ref"].version,
            fields=record, owner=run.owner)
    run.lease.step("batch-finished")
