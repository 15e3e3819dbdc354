"""params.yaml as typed settings: one section per stage, defaults equal to the shipped file.

Resolution order: an explicit path, FORGETFLOW_PARAMS, ./params.yaml, else these defaults (so
an installed `forgetflow` runs anywhere).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataParams(_Section):
    source: str = "fashion-mnist"
    root: str | None = None
    seed: int = 0
    third_party_fraction: float = 0.1
    subject_size: int = 20


class TrainParams(_Section):
    model: str = "cnn"
    epochs: int = Field(12, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = 0.003
    weight_decay: float = 0.0
    seed: int = 0


class EscalationStep(_Section):
    """One fallback tried when the gate fails: another method/config, or a full retrain."""

    method: str
    config: dict[str, Any] = Field(default_factory=dict)


class UnlearnParams(_Section):
    method: str = "dm"
    config: dict[str, Any] = Field(default_factory=dict)
    escalation: list[EscalationStep] = Field(default_factory=lambda: [
        EscalationStep(method="dm", config={"max_steps": 480}),
        EscalationStep(method="retrain"),
    ])


class GateParams(_Section):
    max_third_party_auc: float = 0.60
    max_forget_acc_class: float = 0.02
    max_asr: float = 0.05
    max_test_acc_drop: float = 0.02
    min_auc_samples: int = 50


class RegistryParams(_Section):
    model_name: str = "forgetflow-classifier"


class ScheduleParams(_Section):
    cron: str = "0 2 * * *"


class DemoParams(_Section):
    """The smaller recipe `forgetflow demo` uses so `make run` stays within minutes."""

    epochs: int = Field(4, ge=1)


class Params(BaseModel):
    """Top level ignores sections other stages own (e.g. bench); each section is strict."""

    model_config = ConfigDict(extra="ignore")
    data: DataParams = Field(default_factory=DataParams)
    train: TrainParams = Field(default_factory=TrainParams)
    unlearn: UnlearnParams = Field(default_factory=UnlearnParams)
    gate: GateParams = Field(default_factory=GateParams)
    registry: RegistryParams = Field(default_factory=RegistryParams)
    schedule: ScheduleParams = Field(default_factory=ScheduleParams)
    demo: DemoParams = Field(default_factory=DemoParams)


def params_path(explicit: str | Path | None = None) -> Path | None:
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("FORGETFLOW_PARAMS")
    if env:
        return Path(env)
    local = Path("params.yaml")
    return local if local.exists() else None


def load_params(path: str | Path | None = None) -> Params:
    """Read and validate params; unknown keys are errors, so typos do not pass silently."""
    resolved = params_path(path)
    if resolved is None:
        return Params()
    if not resolved.exists():
        raise FileNotFoundError(f"params file {resolved} does not exist")
    raw = yaml.safe_load(resolved.read_text()) or {}
    return Params.model_validate(raw)
