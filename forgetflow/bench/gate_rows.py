"""`gate_pass` per bench row: would the production gate (params.yaml `gate`, depth checks
included) accept this model? And the escalation ladder: which rung a batch would need."""

from __future__ import annotations

from typing import Any

from forgetflow.core.data.tensors import ImageSet
from forgetflow.core.params import GateParams, load_params
from forgetflow.pipeline.batch import Stage
from forgetflow.pipeline.gate import run_gate


def gate_params() -> GateParams:
    """The gate as shipped (./params.yaml or FORGETFLOW_PARAMS; defaults elsewhere)."""
    return load_params().gate


def ladder() -> list[tuple[str, dict[str, Any]]]:
    """The shipped escalation ladder: (method, config) per rung, rung 1 = `unlearn.method`."""
    return load_params().unlearn.attempts()


def gate_row(model, parent, stage: Stage, retain: ImageSet, test: ImageSet,
             reference: ImageSet, holdout: ImageSet | None, seed: int,
             gate: GateParams | None = None) -> dict[str, Any]:
    """The verdict, the checks that failed, and the depth checks' statistics."""
    k = stage.target.forget_class
    forgotten = [] if k is None else [k]
    res = run_gate(model, parent, [stage], retain, test, reference, forgotten,
                   gate or gate_params(), seed=seed, holdout=holdout)
    return {"gate_pass": res.passed,
            "gate_failed": [c["check"] for c in res.checks if not c["passed"]],
            "gate_depth": {c["metric"]: c["value"] for c in res.checks if c.get("depth")},
            "gate_evidence": {c["metric"]: c.get("evidence") for c in res.checks
                              if c.get("depth")}}
