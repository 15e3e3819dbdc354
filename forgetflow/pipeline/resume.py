"""What a resumed batch reads back instead of redoing: the verdict of a version it already
registered."""

from __future__ import annotations

from typing import Any

from forgetflow.pipeline.gate import GateResult


def recorded_verdict(batch_row: dict[str, Any], gate_tag: str | None,
                     metrics: dict[str, float]) -> tuple[GateResult, list[dict]]:
    """The gate result of an already registered version: its `gate` tag is the verdict, the
    ledger holds the decisions (recorded before registering), MLflow the metrics."""
    decisions = list(batch_row.get("decisions") or [])
    checks = decisions[-1]["checks"] if decisions else []
    return GateResult(gate_tag == "passed", checks, dict(metrics)), decisions
