"""The gate's depth checks, one per stage of a batch: each compares the unlearned model with
something it never learned (forgetflow/core/depth_gate.py), so no Retrain is needed."""

from __future__ import annotations

from typing import Any

import numpy as np

from forgetflow.core.attacks import ProbeError
from forgetflow.core.data.tensors import ImageSet
from forgetflow.core.depth_gate import (
    DepthResult,
    backdoor_depth,
    class_depth,
    samples_depth,
)
from forgetflow.core.params import DepthGateParams
from forgetflow.pipeline.batch import Stage

WHAT = {
    "relearn_gap": "forgotten rows relearn no faster than unseen rows",
    "reimplant_gap": "the removed trigger re-implants no faster than a never-seen one",
    "class_feature_drop": "the class is harder to read from the features than from the "
                          "parent's, beyond the other classes",
}


def unseen_for(pool: ImageSet, holdout: ImageSet | None) -> ImageSet:
    """Evaluation data for a stage whose unlearning used `pool` (the reference part): the
    holdout part restricted to the same classes, or `pool` itself where no holdout exists."""
    if holdout is None or not len(holdout):
        return pool
    return holdout.where(np.isin(holdout.labels.numpy(), np.unique(pool.labels.numpy())))


def _record(stage: str, res: DepthResult, limit: float, passed: bool, bound: str,
            note: str) -> dict[str, Any]:
    return {"check": f"{stage}: depth {res.check}", "value": res.value,
            bound: limit, **({"max": None} if bound == "min" else {}), "passed": passed,
            "note": note, "depth": True, "metric": f"depth.{stage}.{res.check}",
            "evidence": res.as_dict()}


def _skipped(stage: str, kind: str, why: str, passed: bool = True) -> dict[str, Any]:
    return {"check": f"{stage}: depth {kind}", "value": None, "max": None, "passed": passed,
            "note": f"not gated: {why}" if passed else why, "depth": True,
            "metric": f"depth.{stage}.{kind}"}


def stage_depth(model, parent, st: Stage, retain: ImageSet, test: ImageSet,
                unseen: ImageSet, cfg: DepthGateParams, seed: int) -> dict[str, Any]:
    """One stage's check. Too little data to test is recorded as not gated (with why); a
    model whose features cannot be read fails a class check (fail closed)."""
    kind = {"class": "class_feature_drop", "backdoor": "reimplant_gap"}.get(st.scenario,
                                                                          "relearn_gap")
    try:
        if st.scenario == "class":
            res = class_depth(model, parent, st.forget_class, st.forget, retain, unseen, cfg,
                              seed)
            ok = res.value >= cfg.min_class_feature_drop
            return _record(st.name, res, cfg.min_class_feature_drop, ok, "min", (
                f"few-shot recall of class {st.forget_class} from the features: "
                f"{res.forgotten:.1%} vs the parent's {res.control:.1%}; {WHAT[kind]}"))
        if st.scenario == "backdoor":
            res = backdoor_depth(model, st.trigger, unseen, retain, test, cfg, seed)
            limit = cfg.max_reimplant_gap
            note = (f"ASR after re-implanting: removed trigger {res.forgotten:.1%}, "
                    f"never-seen control {res.control:.1%}; {WHAT[kind]}")
        else:
            res = samples_depth(model, st.forget, unseen, retain, cfg, seed)
            limit = cfg.max_relearn_gap
            note = (f"true-class confidence, the wider of before and after relearning: held "
                    f"forgotten rows {res.forgotten:.3f}, held unseen rows {res.control:.3f} "
                    f"({res.rows} rows); {WHAT[kind]}")
    except ProbeError as exc:
        return _skipped(st.name, kind, f"failed closed: {exc}", passed=False)
    except ValueError as exc:
        return _skipped(st.name, kind, str(exc))
    ok = res.value - cfg.noise_z * res.noise <= limit
    return _record(st.name, res, limit, ok, "max", note)


def depth_checks(model, parent, stages: list[Stage], retain: ImageSet, test: ImageSet,
                 third_party: ImageSet, holdout: ImageSet | None, cfg: DepthGateParams,
                 seed: int = 0) -> list[dict[str, Any]]:
    """Every stage's depth check, against the stage's unseen (holdout) data."""
    del third_party  # the stage carries its own pool; kept for a uniform gate signature
    return [stage_depth(model, parent, st, retain, test, unseen_for(st.third_party, holdout),
                        cfg, seed) for st in stages]
