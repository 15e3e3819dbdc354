"""Loading params for the pipeline: validated whole before a batch or a flow writes anything,
including every unlearning attempt (method names and their configs)."""

from __future__ import annotations

from pathlib import Path

from forgetflow.core.params import Params, ParamsError, load_params
from forgetflow.core.unlearn import create_unlearner

__all__ = ["ParamsError", "check_unlearn", "load_checked"]  # ParamsError lives in core.params


def check_unlearn(params: Params) -> None:
    """Build each attempt's unlearner once (cheap: no model involved)."""
    for i, (method, config) in enumerate(params.unlearn.attempts()):
        where = "unlearn.method/config" if i == 0 else f"unlearn.escalation[{i - 1}]"
        try:
            create_unlearner(method, **config)
        except (TypeError, ValueError) as exc:
            raise ParamsError(f"params {where}: {exc}") from exc


def load_checked(path: str | Path | None = None) -> Params:
    """load_params (a ValidationError names the bad key) plus the unlearning check."""
    params = load_params(path)
    check_unlearn(params)
    return params
