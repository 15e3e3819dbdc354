"""The gate's depth checks, one per stage of a batch: each compares the unlearned model with
something it never learned (forgetflow/core/depth_gate.py), so no Retrain is needed."""

from __future__ import annotations

from typing import Any

import numpy as np

from forgetflow.core.attacks import ProbeError
from forgetflow.core.data.tensors import ImageSet
from forgetflow.core.depth_gate import DepthResult, Unpowered
from forgetflow.core.params import DepthGateParams
from forgetflow.pipeline.batch import Stage


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
    """One stage's check, as its scenario defines it. Too few rows for the comparison to have
    power fail unless the model is an exact retrain (or `unpowered: accept` records them as
    not gated); other missing data is recorded as not gated, with why; a model whose
    features cannot be read fails (fail closed)."""
    scenario = st.target.scenario
    kind = scenario.depth_check_name
    try:
        found = scenario.depth_check(model, parent, st.target, retain, test, unseen, cfg, seed)
    except ProbeError as exc:
        return _skipped(st.name, kind, f"failed closed: {exc}", passed=False)
    except Unpowered as exc:  # gate.depth.unpowered: only an exact retrain can pass
        accept = cfg.unpowered == "accept"
        return _skipped(st.name, kind, str(exc) if accept else f"unpowered: {exc}; only an "
                        "exact retrain passes (gate.depth.unpowered: exact)", passed=accept)
    except ValueError as exc:
        return _skipped(st.name, kind, str(exc))
    res = found.result
    if found.bound == "min":
        ok = res.value >= found.limit
    else:
        ok = res.value - cfg.noise_z * res.noise <= found.limit
    return _record(st.name, res, found.limit, ok, found.bound, found.note)


def depth_checks(model, parent, stages: list[Stage], retain: ImageSet, test: ImageSet,
                 third_party: ImageSet, holdout: ImageSet | None, cfg: DepthGateParams,
                 seed: int = 0) -> list[dict[str, Any]]:
    """Every stage's depth check, against the stage's unseen (holdout) data."""
    del third_party  # the stage carries its own pool; kept for a uniform gate signature
    return [stage_depth(model, parent, st, retain, test,
                        unseen_for(st.target.third_party, holdout), cfg, seed) for st in stages]
