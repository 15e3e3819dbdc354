"""params.yaml is validated whole when loaded: unknown unlearning methods or options, bad
batch settings and a bad lease override fail before a batch writes anything."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from forgetflow.core.forget import KINDS
from forgetflow.core.params import BatchParams, load_params
from forgetflow.core.requests import DeletionRequest
from forgetflow.pipeline.settings import ParamsError, load_checked

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, **sections: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(sections))
    return path


def test_shipped_params_load_checked() -> None:
    params = load_checked(ROOT / "params.yaml")
    assert params.batch.max_requests >= 1 and params.batch.lease_seconds > 0
    assert [m for m, _ in params.unlearn.attempts()] == ["dm", "dm", "retrain"]


@pytest.mark.parametrize("unlearn, where", [
    ({"method": "nope"}, "unlearn.method/config"),
    ({"method": "dm", "config": {"max_stepz": 3}}, "unlearn.method/config"),
    ({"method": "dm", "escalation": [{"method": "retrain", "config": {"epochs": 0}}]},
     "unlearn.escalation[0]"),
    ({"method": "dm", "escalation": [{"method": "dm", "config": {"trainable": "x"}}]},
     "unlearn.escalation[0]"),
])
def test_bad_unlearning_settings_are_named(tmp_path: Path, unlearn: dict, where: str) -> None:
    path = write(tmp_path, unlearn=unlearn)
    load_params(path)  # the shape is fine; only the methods are wrong
    with pytest.raises(ParamsError, match=rf"params {where.replace('[', '.').replace(']', '.')}"):
        load_checked(path)


@pytest.mark.parametrize("config, field", [
    ({"lr": float("nan")}, "lr"), ({"lr": -1.0}, "lr"), ({"lr": float("inf")}, "lr"),
    ({"max_steps": 0}, "max_steps"), ({"batch_size": 0}, "batch_size"),
    ({"utility_batch_size": -2}, "utility_batch_size"), ({"check_every": 0}, "check_every"),
    ({"replay_weight": -0.5}, "replay_weight"), ({"min_agreement": 1.5}, "min_agreement"),
    ({"anchor_pool": 0}, "anchor_pool"), ({"stop_z": float("nan")}, "stop_z"),
    ({"max_steps": "many"}, "max_steps"), ({"bn_affine": 3}, "bn_affine"),
    ({"reset": "always"}, "reset"), ({"reset_steps": 0}, "reset_steps"),
    ({"reset_lr": 0.0}, "reset_lr"),
])
def test_dm_values_that_would_fail_mid_batch_are_refused_on_load(tmp_path: Path, config: dict,
                                                                 field: str) -> None:
    """Each used to pass the check and stop the batch after its data version was written."""
    path = write(tmp_path, unlearn={"method": "dm", "config": config})
    with pytest.raises(ParamsError, match=rf"params unlearn.method/config: .*{field}"):
        load_checked(path)


@pytest.mark.parametrize("config", [{"lr": float("nan")}, {"lr": float("inf")},
                                    {"momentum": -0.1}, {"weight_decay": float("nan")}])
def test_baseline_values_that_would_fail_mid_batch_are_refused_on_load(tmp_path: Path,
                                                                       config: dict) -> None:
    path = write(tmp_path, unlearn={"method": "finetune", "config": config})
    with pytest.raises(ParamsError, match="params unlearn.method/config"):
        load_checked(path)


@pytest.mark.parametrize("gate", [{"max_third_party_auc": 60}, {"max_third_party_auc": 0.2},
                                  {"max_test_acc_drop": float("nan")}, {"max_asr": -0.1},
                                  {"max_forget_acc_class": 2}, {"min_auc_samples": 0},
                                  {"test_noise_z": -1}, {"test_noise_z": float("inf")}])
def test_gate_limits_out_of_range_are_refused(tmp_path: Path, gate: dict) -> None:
    """A typo (60 for 0.60) would switch a check off; NaN would fail every batch."""
    with pytest.raises(ValidationError, match=next(iter(gate))):
        load_params(write(tmp_path, gate=gate))


def test_a_misspelt_section_or_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="gates"):
        load_params(write(tmp_path, gates={"max_asr": 0.0}))
    twice = tmp_path / "twice.yaml"
    twice.write_text("gate:\n  max_asr: 0.0\n  max_asr: 0.5\n")
    with pytest.raises(ParamsError, match="max_asr' is given twice"):
        load_params(twice)


@pytest.mark.parametrize("batch", [{"max_requests": 0}, {"lease_seconds": -1},
                                   {"lease_hours": 6}])
def test_bad_batch_settings_are_rejected(tmp_path: Path, batch: dict) -> None:
    with pytest.raises(ValidationError, match="batch"):
        load_params(write(tmp_path, batch=batch))


@pytest.mark.parametrize(("section", "values"), [
    ("data", {"seed": -1}), ("train", {"seed": -3}), ("unlearn", {"seed": -1}),
    ("train", {"seed": 2**32}), ("train", {"model": "bogus"}), ("train", {"lr": -1.0}),
    ("train", {"lr": 0.0}), ("train", {"lr": float("nan")}), ("train", {"lr": float("inf")}),
    ("train", {"weight_decay": -5.0}), ("train", {"weight_decay": float("nan")}),
])
def test_bad_seeds_and_training_settings_are_refused_on_load(tmp_path: Path, section: str,
                                                             values: dict) -> None:
    """Refused when params are read, before a stage or a batch writes anything (a negative
    seed used to fail mid-batch, after the data version was committed)."""
    with pytest.raises(ValidationError, match=f"{section}\\.{next(iter(values))}"):
        load_params(write(tmp_path, **{section: values}))


def test_lease_override_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    batch = BatchParams(lease_seconds=600)
    assert batch.lease() == 600
    monkeypatch.setenv("FORGETFLOW_BATCH_LEASE_SECONDS", "2.5")
    assert batch.lease() == 2.5
    for bad in ("0", "-3", "soon"):
        monkeypatch.setenv("FORGETFLOW_BATCH_LEASE_SECONDS", bad)
        with pytest.raises(ValueError, match="FORGETFLOW_BATCH_LEASE_SECONDS"):
            batch.lease()


def test_every_kind_has_a_request_field_and_round_trips() -> None:
    """The kind table drives validation: each kind's selector is a DeletionRequest field,
    and a stored request rebuilds into the same core request."""
    examples = {"ids": ["digits:train:1"], "subject": "subj-00001", "label": 3,
                "trigger": {"pattern": "square"}}
    for kind, rule in KINDS.items():
        assert rule.selector in DeletionRequest.model_fields
        req = DeletionRequest.model_validate({"kind": kind, rule.selector:
                                              examples[rule.selector]})
        core = req.to_forget_request()
        assert core.kind == kind and getattr(core, rule.selector) is not None
        with pytest.raises(ValidationError, match="needs"):
            DeletionRequest.model_validate({"kind": kind})
