"""Evaluate an unlearned model for one batch and decide whether it may be registered as the
challenger. Thresholds come from params.yaml `gate`; nothing here retrains."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forgetflow.core.data.tensors import ImageSet
from forgetflow.core.evaluate import EvalData, evaluate
from forgetflow.core.metrics import accuracy, predict_logits
from forgetflow.core.params import EvalParams, GateParams
from forgetflow.core.progress import progress_iter
from forgetflow.pipeline.batch import Stage, concat
from forgetflow.pipeline.depth import depth_checks, unseen_for


@dataclass
class GateResult:
    """The verdict plus every check that produced it (recorded in the ledger and artifact)."""

    passed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return "passed" if self.passed else "failed"


def _sample(data: ImageSet, cap: int, seed: int) -> ImageSet:
    if len(data) <= cap:
        return data
    return data.take(np.sort(np.random.default_rng(seed).choice(len(data), cap, replace=False)))


def kept_test(test: ImageSet, forgotten: list[int]) -> ImageSet:
    """The test rows whose class still exists: utility is compared on these."""
    return test.where(~np.isin(test.labels.numpy(), forgotten))


def evaluate_stages(model, stages: list[Stage], retain: ImageSet, test: ImageSet,
                    third_party: ImageSet, caps: EvalParams,
                    seed: int = 0,
                    holdout: ImageSet | None = None) -> tuple[dict, dict[str, dict]]:
    """docs/design.md §10 metrics over the whole forget set (the run's metrics) and, when the batch
    mixes scenarios, per stage (what the gate reads). Retain accuracy reads a seeded sample
    (params evaluation.retain_cap): the full split adds seconds. Unseen-data comparisons read
    the `holdout` split, never the reference data the method itself saw."""
    retain = _sample(retain, caps.retain_cap, seed)
    third_party = unseen_for(third_party, holdout)
    # a class forgotten in the same batch lands somewhere else by design: its stamped test
    # rows would count as attack successes, so a trigger is measured on the kept classes
    forgotten = [s.forget_class for s in stages if s.forget_class is not None]
    per_stage = {}
    for st in progress_iter(stages, "evaluate"):
        per_stage[st.name] = evaluate(model, EvalData(
            st.forget, retain, kept_test(test, forgotten) if st.trigger is not None else test,
            unseen_for(st.third_party, holdout), st.scenario, st.forget_class, st.trigger
        ), seed, depth=caps.depth)
    if len(stages) == 1:
        return per_stage[stages[0].name], per_stage
    trigger = next((s.trigger for s in stages if s.trigger is not None), None)
    overall = evaluate(model, EvalData(concat([s.forget for s in stages]), retain, test,
                                       third_party, "samples", None, trigger), seed)
    if trigger is not None:
        overall["asr"] = per_stage[next(s.name for s in stages if s.trigger is not None)]["asr"]
    return overall, per_stage


def decide(per_stage: dict[str, dict], stages: list[Stage], parent_acc: float, new_acc: float,
           gate: GateParams) -> list[dict[str, Any]]:
    """The checks: forget quality per scenario, and utility vs the parent."""
    checks = []

    def check(name: str, value: float | None, limit: float, note: str = "") -> None:
        ok = value is not None and not np.isnan(value) and value <= limit
        checks.append({"check": name, "value": value, "max": limit, "passed": bool(ok),
                       "note": note})

    for st in stages:
        m = per_stage[st.name]
        if st.scenario == "class":
            check(f"{st.name}: forget_acc", m["forget_acc"], gate.max_forget_acc_class)
        elif st.scenario == "backdoor":
            check(f"{st.name}: asr", m["asr"], gate.max_asr)
        elif len(st.forget) >= gate.min_auc_samples:
            check(f"{st.name}: third_party_auc", m["third_party_auc"], gate.max_third_party_auc)
        else:
            checks.append({"check": f"{st.name}: third_party_auc", "value": m["third_party_auc"],
                           "max": gate.max_third_party_auc, "passed": True,
                           "note": f"not gated: {len(st.forget)} samples < min_auc_samples "
                                   f"({gate.min_auc_samples}), the AUC has no power"})
    check("test_acc_drop", parent_acc - new_acc, gate.max_test_acc_drop,
          "parent minus new accuracy on test rows of the remaining classes")
    return checks


def run_gate(model, parent, stages: list[Stage], retain: ImageSet, test: ImageSet,
             third_party: ImageSet, forgotten: list[int], gate: GateParams,
             caps: EvalParams | None = None, seed: int = 0,
             holdout: ImageSet | None = None, exact: bool = False) -> GateResult:
    """Evaluate, compare with the parent on the same test rows, and decide. `exact`: the
    model was retrained without the rows, so its depth checks are recorded, not gating."""
    overall, per_stage = evaluate_stages(model, stages, retain, test, third_party,
                                         caps or EvalParams(), seed, holdout)
    kept = kept_test(test, forgotten)
    parent_acc = accuracy(predict_logits(parent, kept.images), kept.labels)
    new_acc = accuracy(predict_logits(model, kept.images), kept.labels)
    checks = decide(per_stage, stages, parent_acc, new_acc, gate)
    if gate.depth.enabled:
        retain_rows = _sample(retain, (caps or EvalParams()).retain_cap, seed)
        depth = depth_checks(model, parent, stages, retain_rows, test, third_party, holdout,
                             gate.depth, seed)
        if exact:  # the thresholds are calibrated so that a retrain passes; never block one
            depth = [{**c, "passed": True, "note": f"recorded only (exact retrain without the "
                                                   f"rows): {c['note']}"} for c in depth]
        checks += depth
    metrics = {k: v for k, v in overall.items() if v is not None}
    metrics["parent_test_acc_kept"] = parent_acc
    metrics["test_acc_kept"] = new_acc
    if len(stages) > 1:
        for name, row in per_stage.items():
            metrics.update({f"{name}.{k}": v for k, v in row.items() if v is not None})
    metrics.update({c["metric"]: c["value"] for c in checks
                    if c.get("depth") and c["value"] is not None})
    return GateResult(all(c["passed"] for c in checks), checks, metrics)
