"""`forgetflow audit`: the compliance scan across ledger, registry and data repo.

What an auditor reads into a `done` receipt, checked as invariants, each violation named:
- every serving alias points at a version built on data without the rows of every done request;
- the newest data version holds no excluded id;
- every done request has a receipt, and it verifies; unlearned ones have none yet;
- each batch registered at most one model version, the ledger names that version, and no
  run a closed batch logged is left without a version;
- every version holding rows of an unlearned or done request is tagged tainted; no alias
  points at one holding rows of a done request; none keeps its weights or artifacts past
  `retention.tainted_days` after its last alias left (tombstones hold none);
- no open request is past its due date (sla.days).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.ledger import Ledger, RequestView
from forgetflow.adapters.registry import TAINTED, TOMBSTONE, ModelRef, Registry
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.params import Params
from forgetflow.pipeline.receipt_check import verify_receipt
from forgetflow.pipeline.serving import data_number, serving_refs
from forgetflow.pipeline.sla import OverdueRequests, overdue
from forgetflow.pipeline.taint import expired, open_parents, sweep, taints


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str


def _serving(refs: dict[str, ModelRef], done: list[RequestView],
             aliases: list[str]) -> list[Violation]:
    out = [Violation("serving-untainted", f"serving alias {a!r} points at no version")
           for a in aliases if a not in refs]
    for alias, ref in refs.items():
        held = [r.id for r in done if r.receipt and data_number(ref.tag("data_version"))
                < data_number(r.receipt.get("data_version"))]
        if held:
            out.append(Violation("serving-untainted", f"alias {alias!r} → v{ref.version}, built "
                                 f"on data {ref.tag('data_version')}, which still holds rows "
                                 f"of done request(s) {held}"))
    return out


def _newest_data(repo: DataRepo) -> list[Violation]:
    if not repo.exists():
        return []
    head = repo.version()
    excluded = repo.exclusions(head).ids
    back = excluded & set(repo.manifest(head).ids.tolist())
    return [Violation("data-clean", f"data {head.tag} holds {len(back)} excluded row(s)")
            ] if back else []


def _receipts(ws: Workspace, requests: list[RequestView]) -> list[Violation]:
    out = []
    for r in requests:
        if r.status == "done" and not r.receipt:
            out.append(Violation("receipts", f"request {r.id} is done without a receipt"))
        elif r.status == "unlearned" and r.receipt:
            out.append(Violation("receipts", f"request {r.id} has a receipt before it is done"))
        elif r.status == "done":
            result = verify_receipt(ws, r.id)
            if not result["verified"]:
                out.append(Violation("receipts", f"request {r.id}'s receipt does not verify: "
                                     f"{len(result['mismatches'])} mismatch(es), first: "
                                     f"{result['mismatches'][0]}"))
    return out


def _batches(ledger: Ledger, versions: list[ModelRef], name: str) -> list[Violation]:
    per_batch = Counter(v.tag("batch_id") for v in versions if v.tag("batch_id"))
    out = [Violation("one-version-per-batch", f"batch {b} has {n} model versions")
           for b, n in sorted(per_batch.items()) if n > 1]
    known = {v.version for v in versions}
    for batch in ledger.batches(name):
        if batch.get("model_version") and batch["model_version"] not in known:
            out.append(Violation("one-version-per-batch", f"batch {batch['id']} names "
                                 f"v{batch['model_version']}, which the registry lacks"))
    return out


def _orphan_runs(registry: Registry, ledger: Ledger, versions: list[ModelRef],
                 name: str) -> list[Violation]:
    """Runs a batch of this model logged that no version uses (an open batch's may be
    between its run and its version)."""
    mine = {b["id"]: b["status"] for b in ledger.batches(name)}
    used = {v.run_id for v in versions}
    return [Violation("no-orphan-runs", f"run {run} of batch {batch} belongs to no model "
                      "version") for run, batch in sorted(registry.batch_runs().items())
            if batch in mine and mine[batch] != "processing" and run not in used]


def _tainted(ledger: Ledger, registry: Registry, versions: list[ModelRef], name: str,
             params: Params, now: datetime) -> list[Violation]:
    found, out, busy = taints(ledger, versions, name), [], open_parents(ledger, name)
    serving = params.registry.serving_aliases
    for ref in versions:
        taint = found.get(ref.version)
        if taint is None:
            continue
        if ref.tag(TAINTED) != "true":
            out.append(Violation("tainted-tagged", f"v{ref.version} holds rows of "
                                 f"{len(taint.requests)} unlearned/done request(s) but is not "
                                 "tagged tainted"))
        stray = [a for a in ref.aliases if a not in serving] if taint.done else []
        if stray:
            out.append(Violation("alias-untainted", f"alias(es) {stray} → v{ref.version}, which"
                                 f" holds rows of done request(s) {list(taint.done)}"))
        over = ref.tag(TOMBSTONE) or (ref.version not in busy and expired(
            ref, params.retention.tainted_days, now))
        if over and registry.artifacts_stored(ref):
            out.append(Violation("retention", f"v{ref.version} is tainted and "
                                 + ("a tombstone" if ref.tag(TOMBSTONE) else "past retention")
                                 + " but its weights/artifacts are still stored"))
    return out


class AuditFailed(RuntimeError):
    """The end-of-run scan found a violated invariant: the run fails loudly; `result` is what
    the run did before the scan (the batches ran and are recorded)."""

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result


def audit(ws: Workspace, params: Params, name: str | None = None,
          verify_receipts: bool = True, sla: bool = True,
          now: datetime | None = None) -> dict[str, Any]:
    """{"clean", "violations": [{"invariant", "detail"}], "checked": counts}. The end of
    every `process` run scans without re-verifying each receipt (that grows with history;
    `forgetflow audit` does it) and leaves due dates to its own check."""
    name = name or params.registry.model_name
    ledger, registry, repo = Ledger.open(ws.ledger_url), Registry(ws), DataRepo(ws)
    requests = ledger.list(model_name=name)
    done = [r for r in requests if r.status == "done"]
    versions = registry.versions(name) if registry.model_exists(name) else []
    aliases = params.registry.serving_aliases
    violations = (_serving(serving_refs(registry, name, aliases), done, aliases)
                  if versions else [])
    violations += _newest_data(repo) + _batches(ledger, versions, name)
    violations += _orphan_runs(registry, ledger, versions, name) if versions else []
    violations += _tainted(ledger, registry, versions, name, params, now or datetime.now(UTC))
    violations += _receipts(ws, requests if verify_receipts else
                            [r for r in requests if r.status != "done" or not r.receipt])
    violations += [Violation("sla", f"request {r.id} ({r.status}) was due "
                             f"{r.due_at(params.sla.days):%Y-%m-%d}")
                   for r in (overdue(ledger, params.sla, name) if sla else [])]
    return {"clean": not violations, "model_name": name,
            "violations": [asdict(v) for v in violations],
            "checked": {"requests": len(requests), "done": len(done),
                        "versions": len(versions), "serving_aliases": aliases}}


def end_of_run_checks(ws: Workspace, ledger: Ledger, params: Params, name: str,
                      result: dict[str, Any]) -> dict[str, Any]:
    """What ends every `process` run: retention (taint tags, expired weights deleted), the
    compliance scan (without re-verifying receipts), then due dates. A violated invariant
    fails the run loudly, and it ends failed while any request is past its due date
    (sla.days), so the orchestrator's failure notifications reach someone; the result rides
    on the error."""
    now = datetime.now(UTC)  # one clock: nothing expires between the sweep and the scan
    result["retention"] = sweep(Registry(ws), ledger, name, params, now=now)
    scan = audit(ws, params, name, verify_receipts=False, sla=False, now=now)
    if not scan["clean"]:
        raise AuditFailed("; ".join(f"{v['invariant']}: {v['detail']}"
                                    for v in scan["violations"]), result)
    late = [r.id for r in overdue(ledger, params.sla, name)]
    if late:
        raise OverdueRequests(late, result)
    return result
