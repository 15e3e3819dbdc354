"""Flow `promote`: move `champion` to a version that passed the gate, never backwards; the
requests no serving version holds any more become `done` with their receipts."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from forgetflow.adapters.workspace import Workspace
from forgetflow.core.params import load_params
from forgetflow.pipeline.promotion import PromotionRefused, check_promotable, promote

__all__ = ["PromotionRefused", "check_promotable", "promote_flow"]


@flow(name="promote", log_prints=False)
def promote_flow(model_name: str | None = None, version: str | None = None,
                 params_file: str | None = None) -> dict[str, Any]:
    """Runbook: check the candidate (default: the challenger), move champion, complete the
    requests it serves without, delete the weights of versions that still hold their rows."""
    params = load_params(params_file)
    name = model_name or params.registry.model_name
    result = promote(Workspace.from_env(), name, version, params)
    get_run_logger().info("champion of %s: v%s → v%s; requests now done: %s", name,
                          result["previous_champion"] or "-", result["champion"],
                          result["completed_requests"])
    if any(result["retention"].values()):
        get_run_logger().info("retention: %s", result["retention"])
    return result
