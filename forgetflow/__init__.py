"""forgetflow: right-to-be-forgotten pipeline for image classifiers.

`forgetflow.load_model(uri)` returns the verified torch module of a registered model; it is
imported lazily so `import forgetflow` stays free of torch and MLflow.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_model"]


def __getattr__(name: str) -> Any:
    if name == "load_model":
        from forgetflow.adapters.mlflow_model import load_model

        return load_model
    raise AttributeError(f"module 'forgetflow' has no attribute {name!r}")
