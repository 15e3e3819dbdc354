"""Evaluate an unlearned model for one batch and decide whether it may be registered as the
challenger. Thresholds come from params.yaml `gate`; nothing here retrains."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forgetflow.core.data.tensors import ImageSet
from forgetflow.core.evaluate import EvalData, evaluate
from forgetflow.core.metrics import predict_logits
from forgetflow.core.params import EvalParams, GateParams
from forgetflow.core.progress import progress_iter
from forgetflow.core.scenarios import SAMPLES, ForgetTarget
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
    forgotten = [s.target.forget_class for s in stages if s.target.forget_class is not None]
    per_stage = {}
    for st in progress_iter(stages, "evaluate"):
        t = st.target
        per_stage[st.name] = evaluate(model, EvalData(
            t.with_pool(unseen_for(t.third_party, holdout)), retain,
            kept_test(test, forgotten) if t.trigger is not None else test), seed,
            depth=caps.depth)
    if len(stages) == 1:
        return per_stage[stages[0].name], per_stage
    every_row = ForgetTarget(SAMPLES, concat([s.target.forget for s in stages]), third_party)
    overall = evaluate(model, EvalData(every_row, retain, test), seed)
    backdoor = next((s.name for s in stages if s.target.trigger is not None), None)
    if backdoor is not None:  # measured on the kept classes, as in the stage
        overall["asr"] = per_stage[backdoor]["asr"]
    return overall, per_stage


def paired_drop(parent_right: np.ndarray, new_right: np.ndarray) -> tuple[float, float]:
    """Parent minus new accuracy on the same rows, and its standard error (of the mean of
    the per-row differences: only rows on which the two disagree add to it)."""
    diff = parent_right.astype(np.float64) - new_right.astype(np.float64)
    if len(diff) == 0:
        return float("nan"), 0.0
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return float(diff.mean()), se


def decide(per_stage: dict[str, dict], stages: list[Stage], parent_acc: float, new_acc: float,
           gate: GateParams, drop_se: float = 0.0) -> list[dict[str, Any]]:
    """The checks: forget quality per scenario, and utility vs the parent (with a noise
    allowance of `test_noise_z` standard errors: on a test split of a few dozen images one
    flipped answer is worth several points, and a retrain must not be refused for that)."""
    checks = []

    def check(name: str, value: float | None, limit: float, note: str = "",
              allowance: float = 0.0) -> None:
        ok = value is not None and not np.isnan(value) and value - allowance <= limit
        checks.append({"check": name, "value": value, "max": limit, "passed": bool(ok),
                       "note": note})

    for st in stages:
        out = st.target.scenario.output_check(st.target, gate)
        value = per_stage[st.name][out.metric]
        if not out.not_gated:
            check(f"{st.name}: {out.metric}", value, out.limit)
        else:
            checks.append({"check": f"{st.name}: {out.metric}", "value": value,
                           "max": out.limit, "passed": True,
                           "note": f"not gated: {out.not_gated}"})
    allowance = gate.test_noise_z * drop_se
    check("test_acc_drop", parent_acc - new_acc, gate.max_test_acc_drop,
          "parent minus new accuracy on test rows of the remaining classes; noise allowance "
          f"{allowance:.4f} ({gate.test_noise_z:g} standard errors of the paired difference)",
          allowance)
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
    parent_right = (predict_logits(parent, kept.images).argmax(1) == kept.labels).numpy()
    new_right = (predict_logits(model, kept.images).argmax(1) == kept.labels).numpy()
    drop, drop_se = paired_drop(parent_right, new_right)
    parent_acc = float(parent_right.mean()) if len(kept) else float("nan")
    new_acc = parent_acc - drop
    checks = decide(per_stage, stages, parent_acc, new_acc, gate, drop_se)
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
