"""The unlearning contract and registry every method plugs into (timm-style)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from forgetflow.core.data.tensors import ImageSet
from forgetflow.core.models import Classifier
from forgetflow.core.scenarios import ForgetTarget, Scenario
from forgetflow.core.training import ModelSpec, TrainConfig
from forgetflow.core.triggers import TriggerSpec


@dataclass
class UnlearnTask:
    """Everything a method may use. `target.forget` holds the samples exactly as they were
    trained on (for backdoors: the stamped images with their poisoned labels); its scenario
    supplies every scenario-specific rule a method needs (forgetflow/core/scenarios)."""

    model: Classifier
    spec: ModelSpec
    train_config: TrainConfig
    target: ForgetTarget
    retain: ImageSet
    seed: int = 0
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.target.forget) == 0:
            raise ValueError("the forget set is empty")
        if len(self.retain) == 0:
            raise ValueError("the forget set covers the whole training set: nothing to retain")

    @property
    def scenario(self) -> Scenario:
        return self.target.scenario

    @property
    def forget(self) -> ImageSet:
        return self.target.forget

    @property
    def third_party(self) -> ImageSet:
        return self.target.third_party

    @property
    def forget_class(self) -> int | None:
        return self.target.forget_class

    @property
    def trigger(self) -> TriggerSpec | None:
        return self.target.trigger

    def fresh_copy(self) -> Classifier:
        """A trainable copy of the original; methods never mutate the caller's model."""
        model = copy.deepcopy(self.model)
        model.train()
        return model


class Unlearner:
    """Base class: subclasses set `name` and implement `unlearn`."""

    name: str = ""
    # a batch mixing scenarios runs one pass per scenario; False: one pass over all rows
    per_stage: bool = True

    def __init__(self, **cfg: object) -> None:
        self.cfg = cfg

    def unlearn(self, task: UnlearnTask) -> Classifier:
        raise NotImplementedError

    def __call__(self, task: UnlearnTask) -> Classifier:
        torch.manual_seed(task.seed)
        model = self.unlearn(task)
        model.eval()
        return model


_REGISTRY: dict[str, type[Unlearner]] = {}


def register_unlearner(name: str) -> Callable[[type[Unlearner]], type[Unlearner]]:
    def wrap(cls: type[Unlearner]) -> type[Unlearner]:
        if name in _REGISTRY:
            raise ValueError(f"unlearner {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap
