"""params.yaml as typed settings: one section per stage, defaults equal to the shipped file.

Resolution order: an explicit path, FORGETFLOW_PARAMS, ./params.yaml, else these defaults (so
an installed `forgetflow` runs anywhere).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field


class ParamsError(ValueError):
    """params.yaml cannot be read as a mapping of sections."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


SEED_MAX = 2**32 - 1  # numpy and torch generators take seeds in [0, 2**32)


def _seed() -> Any:
    return Field(0, ge=0, le=SEED_MAX)


class DataParams(_Section):
    source: str = "fashion-mnist"
    root: str | None = None
    seed: int = _seed()
    third_party_fraction: float = 0.1
    subject_size: int = 20
    holdout_fraction: float = 0.5  # of the third-party pool: evaluation only (docs/design.md §3)
    channels: Literal[1, 3] = 3  # image folders / S3 prefixes only: 1 (L) or 3 (RGB)
    image_size: int = Field(32, ge=8, le=512)  # image folders / S3 prefixes: resized square


class TrainParams(_Section):
    model: Literal["cnn", "resnet8", "resnet18"] = "cnn"  # forgetflow.core.models.MODEL_NAMES
    epochs: int = Field(12, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(0.003, gt=0, le=10, allow_inf_nan=False)
    weight_decay: float = Field(0.0, ge=0, le=10, allow_inf_nan=False)
    seed: int = _seed()


class EscalationStep(_Section):
    """One fallback tried when the gate fails: another method/config, or a full retrain."""

    method: str
    config: dict[str, Any] = Field(default_factory=dict)


class UnlearnParams(_Section):
    method: str = "dm"
    config: dict[str, Any] = Field(default_factory=dict)
    escalation: list[EscalationStep] = Field(default_factory=lambda: [
        EscalationStep(method="dm", config={"trainable": "all", "max_steps": 480}),
        EscalationStep(method="retrain"),
    ])
    seed: int = _seed()

    def attempts(self) -> list[tuple[str, dict[str, Any]]]:
        """The method, then each escalation step (configs merge for the same method)."""
        plan = [(self.method, dict(self.config))]
        for step in self.escalation:
            base = dict(self.config) if step.method == self.method else {}
            plan.append((step.method, {**base, **step.config}))
        return plan


class DepthGateParams(_Section):
    """The gate's retrain-free depth checks (forgetflow/core/depth_gate.py) and the one attack
    budget they share; thresholds calibrated by the bench on tuning seeds (docs/method.md §11)."""

    enabled: bool = True
    max_relearn_gap: float = Field(0.019, ge=0, le=1)  # samples/subject
    max_reimplant_gap: float = Field(0.123, ge=0, le=1)  # backdoor
    min_class_feature_drop: float = Field(0.001, ge=0, le=1)  # class
    noise_z: float = Field(1.0, ge=0)  # a gap within noise_z standard errors is not a failure
    steps: int = Field(30, ge=1)
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    shown_fraction: float = Field(0.2, gt=0, lt=1)
    min_shown: int = Field(10, ge=1)
    max_shown: int = Field(256, ge=1)
    implant_shown: int = Field(16, ge=1)
    implant_steps: int = Field(20, ge=1)
    implant_lr: float = Field(0.003, gt=0)
    implant_repeats: int = Field(3, ge=1)
    retain_per_step: int = Field(64, ge=1)
    shots: int = Field(10, ge=1)
    repeats: int = Field(20, ge=1)
    min_rows: int = Field(400, ge=2)  # samples/subject: fewer rows than this cannot be judged
    # what an unpowered samples/subject stage gets: "exact" = fails unless the rung is an exact
    # retrain (the ladder climbs to it); "accept" = recorded as not depth-gated
    unpowered: Literal["exact", "accept"] = "exact"


class GateParams(_Section):
    """Output checks' limits; bounded so a typo (60 for 0.60) cannot switch a check off."""

    max_third_party_auc: float = Field(0.60, ge=0.5, le=1)  # 0.5 = chance
    max_forget_acc_class: float = Field(0.02, ge=0, le=1)
    max_asr: float = Field(0.05, ge=0, le=1)
    max_test_acc_drop: float = Field(0.02, ge=-1, le=1)  # parent minus new accuracy
    # the drop is compared less this many standard errors of the paired per-row difference
    test_noise_z: float = Field(2.0, ge=0, le=10)
    min_auc_samples: int = Field(50, ge=1)
    depth: DepthGateParams = Field(default_factory=DepthGateParams)


class EvalParams(_Section):
    """Caps that keep the gate's evaluation fast on large splits."""

    retain_cap: int = Field(10000, ge=1)  # retain accuracy on a seeded sample of this size
    depth: bool = False  # also run the depth attacks (relearn_acc, probe_acc; a few seconds)


class BatchParams(_Section):
    """How deletion batches run: bounded size, and a lease renewed while a batch is alive."""

    max_requests: int = Field(250, ge=1)  # pending requests claimed per batch
    lease_seconds: float = Field(600.0, gt=0)  # FORGETFLOW_BATCH_LEASE_SECONDS overrides

    def lease(self) -> float:
        """The lease length, with the environment's override (operators, tests)."""
        raw = os.environ.get("FORGETFLOW_BATCH_LEASE_SECONDS")
        if raw is None:
            return self.lease_seconds
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not value > 0:
            raise ValueError(f"FORGETFLOW_BATCH_LEASE_SECONDS must be a positive number of "
                             f"seconds, got {raw!r}")
        return value


class ConcurrencyParams(_Section):
    """Prefect tag concurrency limits `forgetflow serve` creates."""

    gpu: int = Field(1, ge=1)  # compute tasks at once per device
    dvc: int = Field(1, ge=1)  # data-registry writers at once


class RegistryParams(_Section):
    model_name: str = "forgetflow-classifier"
    # aliases that answer traffic: a request is done only once every one of them points at a
    # version built without its rows
    serving_aliases: list[str] = Field(default_factory=lambda: ["champion"], min_length=1)


class SlaParams(_Section):
    """How long a request may take: GDPR Art. 12(3) gives one month."""

    days: int = Field(30, ge=1)  # due_at = submitted_at + days
    warn_days: int = Field(7, ge=0)  # `status` lists requests due within this many days


class PromoteParams(_Section):
    auto: bool = False  # promote a gate-passed challenger at the end of its batch


class ScheduleParams(_Section):
    cron: str = "0 2 * * *"


class RetentionParams(_Section):
    """How long a tainted version (its data still holds rows of an unlearned or done request)
    keeps its weights once no alias points at it; then only a tombstone stays."""

    tainted_days: float = Field(0, ge=0)


class DemoParams(_Section):
    """The smaller recipe `forgetflow demo` uses so `make run` stays within minutes."""

    epochs: int = Field(4, ge=1)
    # size of the demo's samples request: at least gate.depth.min_rows, so the demo's
    # sample/subject stage is judged by the relearn check rather than sent to a retrain
    samples: int = Field(400, ge=1)


class Params(BaseModel):
    """Every section and key is known: a misspelt section (`gates:`) is an error, not a
    silently ignored block."""

    model_config = ConfigDict(extra="forbid")
    data: DataParams = Field(default_factory=DataParams)
    train: TrainParams = Field(default_factory=TrainParams)
    unlearn: UnlearnParams = Field(default_factory=UnlearnParams)
    gate: GateParams = Field(default_factory=GateParams)
    registry: RegistryParams = Field(default_factory=RegistryParams)
    promote: PromoteParams = Field(default_factory=PromoteParams)
    sla: SlaParams = Field(default_factory=SlaParams)
    retention: RetentionParams = Field(default_factory=RetentionParams)
    schedule: ScheduleParams = Field(default_factory=ScheduleParams)
    demo: DemoParams = Field(default_factory=DemoParams)
    evaluation: EvalParams = Field(default_factory=EvalParams)
    batch: BatchParams = Field(default_factory=BatchParams)
    concurrency: ConcurrencyParams = Field(default_factory=ConcurrencyParams)


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (YAML keeps the last one, so
    the first setting would be dropped without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def params_path(explicit: str | Path | None = None) -> Path | None:
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("FORGETFLOW_PARAMS")
    if env:
        return Path(env)
    local = Path("params.yaml")
    return local if local.exists() else None


def load_params(path: str | Path | None = None) -> Params:
    """Read and validate params; unknown keys are errors, so typos do not pass silently.
    (The pipeline loads through forgetflow.pipeline.settings, which also checks the unlearning
    methods; dvc stages never unlearn and read this directly.)"""
    resolved = params_path(path)
    raw: Any = {}
    if resolved is not None:
        if not resolved.exists():
            raise FileNotFoundError(f"params file {resolved} does not exist")
        if not resolved.is_file():
            raise ParamsError(f"params file {resolved} is not a file")
        try:
            raw = yaml.load(resolved.read_text(encoding="utf-8"), _UniqueKeyLoader) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ParamsError(f"params file {resolved} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ParamsError(f"params file {resolved} must be a mapping of sections, got "
                              f"{type(raw).__name__}")
    return Params.model_validate(raw)
