"""Self-describing, code-free model files: safetensors weights whose header carries the
architecture config and a content digest.

Why not `torch.save`: a pickled module (or a pickled checkpoint dict) runs arbitrary code when
it is loaded, and a model registry is shared. A safetensors file holds only tensors and string
metadata, so loading it can at worst fail. The digest (sha256 over the config JSON and every
tensor's name, dtype, shape and bytes) is checked on every read, so flipped bytes or a config
swapped in from another model fail loudly instead of producing a silently different model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from forgetflow.core.models import Classifier, build_model

FORMAT = "forgetflow.model/1"


class ModelFileError(ValueError):
    """A model file is unreadable, tampered with, or does not match what was recorded."""


@dataclass(frozen=True)
class ModelFile:
    """What a model file holds: the rebuilt module and the config stored next to its weights.
    `spec` and `train_config` are the dicts of `ModelSpec` and `TrainConfig`."""

    model: Classifier
    spec: dict[str, Any]
    train_config: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_digest(config_json: str, state: dict[str, torch.Tensor]) -> str:
    """sha256 over the config and the tensors in name order (independent of file layout)."""
    digest = hashlib.sha256(config_json.encode())
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"\n{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_model_file(path: str | Path, model: Classifier, spec: Any, train_config: Any,
                    extra: dict[str, Any] | None = None) -> str:
    """Write weights + config (+ JSON-able `extra`); returns the file's sha256 for the caller
    to record elsewhere (MLmodel, registry tag, receipt)."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    config = json.dumps({"spec": _as_dict(spec), "train_config": _as_dict(train_config),
                         "extra": extra or {}}, sort_keys=True)
    metadata = {"format": FORMAT, "config": config,
                "content_sha256": content_digest(config, state)}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=metadata)
    return file_sha256(path)


def read_model_file(path: str | Path, expected_sha256: str | None = None) -> ModelFile:
    """Load and verify; `expected_sha256` (from the registry or MLmodel) also pins the file."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    actual = file_sha256(path)
    if expected_sha256 and actual != expected_sha256:
        raise ModelFileError(f"model file {path} has sha256 {actual[:16]}…, but "
                             f"{expected_sha256[:16]}… was recorded when it was saved: the file "
                             "was replaced or modified")
    state, metadata = _read_tensors(path)
    if metadata.get("format") != FORMAT:
        raise ModelFileError(f"model file {path} is not a {FORMAT} file "
                             f"(format {metadata.get('format')!r})")
    config_json = metadata.get("config", "")
    recorded = metadata.get("content_sha256", "")
    if content_digest(config_json, state) != recorded:
        raise ModelFileError(f"model file {path} failed its integrity check: the weights or the "
                             "architecture config changed after the file was written")
    try:
        config = json.loads(config_json)
        spec = config["spec"]
        model = build_model(spec["name"], spec["in_channels"], spec["num_classes"],
                            spec["image_size"], spec["mean"], spec["std"])
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"model file {path}: weights do not fit its config: {exc}") from exc
    model.eval()
    return ModelFile(model, spec, config["train_config"], config.get("extra", {}), actual)


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = dict(fh.metadata() or {})
            state = {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types for any corruption
        raise ModelFileError(f"model file {path} is corrupt or not safetensors: {exc}") from exc
    return state, metadata


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else asdict(value)
