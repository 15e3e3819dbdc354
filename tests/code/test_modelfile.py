"""Code tier: model files load without unpickling anything, and tampering fails loudly."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from forgetflow.core.modelfile import ModelFileError, file_sha256, read_model_file
from forgetflow.core.training import (
    ModelSpec,
    TrainConfig,
    load_checkpoint,
    new_model,
    save_checkpoint,
)

SPEC = ModelSpec("cnn", 1, 10, 16, [0.4], [0.3])
OTHER = ModelSpec("cnn", 1, 10, 16, [0.1], [0.9])


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, new_model(SPEC).eval(), SPEC, TrainConfig(epochs=2), {"run": "r1"})
    return path


def rewrite(path: Path, edit_config=None, edit_state=None) -> None:
    """Re-save the file with edited config or tensors but the ORIGINAL recorded digest (what an
    attacker or a bad copy would produce without knowing the digest scheme)."""
    with safe_open(str(path), framework="pt") as fh:
        meta = dict(fh.metadata())
        state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    if edit_config:
        meta["config"] = json.dumps(edit_config(json.loads(meta["config"])), sort_keys=True)
    if edit_state:
        edit_state(state)
    save_file(state, str(path), metadata=meta)


def test_round_trip_is_exact_and_verified(saved: Path) -> None:
    model, spec, recipe, extra = load_checkpoint(saved, file_sha256(saved))
    assert spec == SPEC and recipe.epochs == 2 and extra == {"run": "r1"}
    torch.manual_seed(0)
    reference = new_model(SPEC).eval()
    x = torch.rand(4, 1, 16, 16)
    assert torch.equal(model(x), reference(x))


def test_flipped_weight_bytes_fail_the_digest(saved: Path) -> None:
    raw = bytearray(saved.read_bytes())
    raw[-3] ^= 0xFF  # inside the tensor payload (the header comes first)
    saved.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="failed its integrity check"):
        load_checkpoint(saved)


def test_flipped_header_bytes_are_a_clear_error(saved: Path) -> None:
    raw = bytearray(saved.read_bytes())
    raw[12] ^= 0xFF  # inside the JSON header
    saved.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="corrupt|integrity|config"):
        load_checkpoint(saved)


def test_swapped_config_fails_the_digest(saved: Path) -> None:
    def swap(config: dict) -> dict:
        return {**config, "spec": {**config["spec"], "mean": OTHER.mean, "std": OTHER.std}}

    rewrite(saved, edit_config=swap)
    with pytest.raises(ModelFileError, match="failed its integrity check"):
        load_checkpoint(saved)


def test_swapped_tensor_fails_the_digest(saved: Path) -> None:
    def zero_first(state: dict) -> None:
        first = sorted(state)[0]
        state[first] = torch.zeros_like(state[first])

    rewrite(saved, edit_state=zero_first)
    with pytest.raises(ModelFileError, match="failed its integrity check"):
        load_checkpoint(saved)


def test_a_valid_but_different_file_fails_the_recorded_sha(saved: Path, tmp_path: Path) -> None:
    recorded = file_sha256(saved)
    other = tmp_path / "other.safetensors"
    save_checkpoint(other, new_model(OTHER), OTHER, TrainConfig())
    other.replace(saved)
    read_model_file(saved)  # self-consistent on its own ...
    with pytest.raises(ModelFileError, match="was replaced or modified"):
        read_model_file(saved, recorded)  # ... but not the file that was recorded


def test_truncated_and_missing_files_are_clear_errors(saved: Path, tmp_path: Path) -> None:
    saved.write_bytes(saved.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="corrupt or not safetensors"):
        load_checkpoint(saved)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.safetensors")


class _Payload:
    """Unpickling this creates a marker file: proof that a loader ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.marker,))


def test_a_pickle_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    evil = tmp_path / "model.safetensors"
    evil.write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))
    with pytest.raises(ModelFileError):
        load_checkpoint(evil)
    assert not marker.exists()
