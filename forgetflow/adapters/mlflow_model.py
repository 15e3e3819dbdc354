"""The `forgetflow` MLflow model flavor: safe to load from a shared registry.

One MLflow model directory carries three flavors, none of which unpickles code:
- `forgetflow`: `forgetflow/model.safetensors` (weights + architecture config + content digest,
  see forgetflow.core.modelfile) and its file sha256; `forgetflow.load_model(uri)` rebuilds the
  `torch.nn.Module` from it and verifies both digests;
- `python_function`: this module is the loader (`_load_pyfunc`), reading the same safetensors
  file, so `mlflow.pyfunc.load_model(uri).predict(x)` maps float32 [N, C, H, W] numpy pixels to
  logits as numpy;
- `pytorch`: a `torch.export` (pt2) archive, which MLflow validates as pickle-free before it
  loads it, so `mlflow.pytorch.load_model(uri)` keeps working (it returns the exported graph
  module, not the Classifier class, and does not check the forgetflow digests).

Importing this module is cheap (no MLflow, no Prefect): MLflow imports it at load time.
"""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path
from typing import Any

import numpy as np

FLAVOR = "forgetflow"
DATA_DIR = "forgetflow"
WEIGHTS = "model.safetensors"
PREDICT_BATCH = 1024


def requirements() -> list[str]:
    """Pinned libraries a loader needs next to an installed forgetflow (no cloudpickle)."""
    return [f"{pkg}=={md.version(pkg)}" for pkg in ("torch", "safetensors", "numpy")]


def save_model(path: str, mlflow_model: Any, model: Any, spec: Any, recipe: Any,
               extra: dict[str, Any] | None = None, **_: Any) -> None:
    """Called by `mlflow.models.Model.log(flavor=this module, ...)`: write the directory."""
    import mlflow.pytorch
    import torch
    from mlflow import pyfunc

    from forgetflow.core.modelfile import FORMAT, save_model_file

    model = model.cpu().eval()
    c, size = spec.in_channels, spec.image_size
    example = np.zeros((2, c, size, size), dtype=np.float32)  # never real pixels (no leaks)
    with torch.no_grad():
        mlflow.pytorch.save_model(model, path, serialization_format="pt2", input_example=example,
                                  mlflow_model=mlflow_model, pip_requirements=requirements())
    sha = save_model_file(Path(path) / DATA_DIR / WEIGHTS, model, spec, recipe, extra)
    mlflow_model.flavors.pop(pyfunc.FLAVOR_NAME, None)
    pyfunc.add_to_model(mlflow_model, loader_module=__name__, data=DATA_DIR,
                        conda_env="conda.yaml", python_env="python_env.yaml")
    mlflow_model.add_flavor(FLAVOR, weights=f"{DATA_DIR}/{WEIGHTS}", sha256=sha, format=FORMAT)
    mlflow_model.save(str(Path(path) / "MLmodel"))


def read_model_dir(local_path: str | Path, expected_sha256: str | None = None) -> Any:
    """Verify and load the forgetflow flavor of a downloaded model directory (a ModelFile)."""
    from mlflow.models import Model

    from forgetflow.core.modelfile import ModelFileError, read_model_file

    root = Path(local_path)
    meta = Model.load(str(root / "MLmodel"))
    conf = meta.flavors.get(FLAVOR)
    if conf is None:
        raise ModelFileError(f"model at {root} has no {FLAVOR!r} flavor: it was not logged by "
                             "this forgetflow (pickled models are no longer loaded)")
    if expected_sha256 and conf.get("sha256") != expected_sha256:
        raise ModelFileError(f"model at {root}: MLmodel records sha256 "
                             f"{str(conf.get('sha256'))[:16]}…, the registry "
                             f"{expected_sha256[:16]}…: the model files were replaced")
    return read_model_file(root / conf["weights"], conf.get("sha256"))


class ForgetflowPyfunc:
    """What `mlflow.pyfunc.load_model` wraps: numpy pixels in, numpy logits out."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        import torch

        x = np.ascontiguousarray(np.asarray(model_input), dtype=np.float32)
        if x.ndim != 4:
            raise ValueError(f"expected float32 pixels [N, C, H, W], got shape {x.shape}")
        outputs = []
        with torch.no_grad():
            for start in range(0, len(x), PREDICT_BATCH):
                outputs.append(self.module(torch.from_numpy(x[start:start + PREDICT_BATCH])))
        return torch.cat(outputs).numpy() if outputs else np.zeros((0, 0), np.float32)

    def get_raw_model(self) -> Any:
        return self.module


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> ForgetflowPyfunc:
    """MLflow's pyfunc entry point; `data_path` is `<model dir>/forgetflow`."""
    return ForgetflowPyfunc(read_model_dir(Path(data_path).parent).model)


def load_model(model_uri: str, expected_sha256: str | None = None,
               tracking_uri: str | None = None) -> Any:
    """`forgetflow.load_model`: the verified torch module behind any MLflow model URI
    (`models:/name@alias`, `models:/name/3`, `runs:/…`, a local path). `models:/` URIs are
    resolved against `tracking_uri`, else MLflow's own setting (MLFLOW_TRACKING_URI or
    `mlflow.set_tracking_uri`), else the workspace's MLflow."""
    import mlflow.artifacts
    from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

    from forgetflow.adapters.workspace import Workspace

    uri = tracking_uri or (mlflow.get_tracking_uri() if is_tracking_uri_set()
                           else Workspace.from_env().mlflow_tracking_uri)
    return read_model_dir(download(model_uri, uri), expected_sha256).model


def download(model_uri: str, uri: str) -> str:
    """A local copy of the model directory. `models:/` URIs are resolved to their storage
    location through a client bound to `uri` (MLflow's own resolution reads its process-wide
    registry URI and ignores the one passed in), so no global setting is touched."""
    import mlflow
    import mlflow.artifacts

    if model_uri.startswith("models:/"):
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        rest = model_uri[len("models:/"):].rstrip("/")
        if "@" in rest:
            name, alias = rest.split("@", 1)
            model_uri = client.get_model_version_download_uri(
                name, client.get_model_version_by_alias(name, alias).version)
        elif "/" in rest:
            name, version = rest.split("/", 1)
            model_uri = client.get_model_version_download_uri(name, version)
        else:  # an MLflow 3 logged-model id (m-…)
            model_uri = client.get_logged_model(rest).artifact_location
    return mlflow.artifacts.download_artifacts(artifact_uri=model_uri, tracking_uri=uri)
