"""Registered models load without unpickling code (docs/design.md §7), in a fresh process,
through all three documented lines, and a tampered stored file fails with a clear error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import torch

from forgetflow.adapters.registry import Registry
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.modelfile import ModelFileError

NAME = "ff-test"
LOADERS = """
import sys, numpy as np
x = np.random.default_rng(0).random((5, 1, 16, 16), dtype=np.float32)
import mlflow.pyfunc
pyfunc_logits = mlflow.pyfunc.load_model("models:/ff-test@champion").predict(x)
import forgetflow, torch
module = forgetflow.load_model("models:/ff-test@champion")
import mlflow.pytorch
exported = mlflow.pytorch.load_model("models:/ff-test@champion")
with torch.no_grad():
    ours = module(torch.from_numpy(x)).numpy()
    theirs = exported(torch.from_numpy(x)).numpy()
assert type(pyfunc_logits).__name__ == "ndarray" and pyfunc_logits.shape == (5, 10)
assert type(module).__name__ == "Classifier", type(module)
assert np.allclose(pyfunc_logits, ours, atol=1e-5) and np.allclose(ours, theirs, atol=1e-4)
print("ok", pyfunc_logits.dtype)
"""


def fresh_python(code: str) -> subprocess.CompletedProcess:
    """A new interpreter that refuses any pickle MLflow would deserialize."""
    env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)


def stored_weights(registry: Registry, version: str) -> Path:
    """The weights file inside the artifact store (not a downloaded copy)."""
    mv = registry.client.get_model_version(NAME, version)
    logged = registry.client.get_logged_model(mv.source.removeprefix("models:/"))
    return Path(logged.artifact_location.removeprefix("file://")) / "forgetflow/model.safetensors"


def test_three_loading_lines_in_a_fresh_process(trained: dict[str, str]) -> None:
    out = fresh_python(LOADERS)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok float32")


def test_no_pickled_artifact_is_stored(trained: dict[str, str]) -> None:
    registry = Registry(Workspace.from_env())
    root = stored_weights(registry, "1").parent.parent
    names = {p.name for p in root.rglob("*") if p.is_file()}
    assert "model.safetensors" in names and "model.pt2" in names
    assert not names & {"model.pth", "python_model.pkl", "pickle_module_info.txt"}
    ref = registry.ref(NAME, "1")
    assert ref.tag("model_sha256") == registry.model_sha256(ref)


def tampered_version(registry: Registry) -> tuple[str, Path]:
    base = registry.ref(NAME, "1")
    model, spec, recipe = registry.load(base)
    tags = {k.removeprefix("forgetflow."): v for k, v in base.tags.items()
            if k != "forgetflow.model_sha256"}
    ref = registry.register(NAME, model, spec, recipe, tags, {}, [])
    return ref.version, stored_weights(registry, ref.version)


def test_flipped_bytes_in_the_registry_fail_every_loader(trained: dict[str, str]) -> None:
    registry = Registry(Workspace.from_env())
    version, path = tampered_version(registry)
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="was replaced or modified"):
        registry.load(registry.ref(NAME, version))
    code = (f"import mlflow.pyfunc; mlflow.pyfunc.load_model('models:/{NAME}/{version}')")
    out = fresh_python(code)
    assert out.returncode != 0 and "ModelFileError" in out.stderr, out.stderr[-2000:]


def test_a_file_swapped_in_from_another_version_fails(trained: dict[str, str]) -> None:
    """Both files are valid on their own; the registry's sha256 tag tells them apart."""
    registry = Registry(Workspace.from_env())
    version, path = tampered_version(registry)
    other = registry.ref(NAME, "1")
    model, spec, recipe = registry.load(other)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    from forgetflow.core.modelfile import save_model_file

    save_model_file(path, model, spec, recipe)
    with pytest.raises(ModelFileError, match="sha256"):
        registry.load(registry.ref(NAME, version))
    import forgetflow

    with pytest.raises(ModelFileError, match="sha256"):
        forgetflow.load_model(f"models:/{NAME}/{version}")
    mlflow.set_tracking_uri(trained["MLFLOW_TRACKING_URI"])


def test_forgetflow_load_model_finds_the_workspace_without_mlflow_settings(
        trained: dict[str, str], tmp_path: Path) -> None:
    """Only FORGETFLOW_HOME set: `models:/` resolves against the workspace's MLflow, and
    MLflow's process-wide URIs are left as they were."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    code = ("import forgetflow, mlflow, torch\n"
            "m = forgetflow.load_model('models:/ff-test@champion')\n"
            "from mlflow.tracking._tracking_service.utils import is_tracking_uri_set\n"
            "print(type(m).__name__, tuple(m(torch.rand(2, 1, 16, 16)).shape), "
            "is_tracking_uri_set())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[0] == "Classifier (2, 10) False"
