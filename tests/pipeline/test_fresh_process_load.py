"""A fresh process that only has FORGETFLOW_HOME (no MLFLOW_TRACKING_URI), as `forgetflow
process` run after `forgetflow train` is, loads the registered model: MLflow resolves
`models:/` URIs through its global registry URI, not the one passed to it."""

from __future__ import annotations

import os
import subprocess
import sys

LOAD = """
from forgetflow.adapters.registry import Registry
from forgetflow.adapters.workspace import Workspace
registry = Registry(Workspace.from_env())
model, spec, recipe = registry.load(registry.ref("ff-test", "champion"))
print(type(model).__name__, recipe.epochs)
"""


def test_registered_model_loads_in_a_fresh_process(trained: dict, tmp_path) -> None:
    env = {k: v for k, v in os.environ.items()  # mlflow.set_*_uri also exports these
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    proc = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[0] == "Classifier"
