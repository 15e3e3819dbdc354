"""One unlearning attempt of a batch: the stages chained through one model."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from forgetflow.core.data.tensors import ImageSet
from forgetflow.core.models import Classifier
from forgetflow.core.training import ModelSpec, TrainConfig
from forgetflow.core.unlearn import UnlearnTask, create_unlearner
from forgetflow.pipeline.batch import Stage, concat


@dataclass
class UnlearnOutcome:
    model: Classifier
    method: str
    config: dict[str, Any]
    seconds: float
    reports: dict[str, Any]


def unlearn(method: str, config: dict[str, Any], parent: Classifier, spec: ModelSpec,
            recipe: TrainConfig, stages: list[Stage], retain: ImageSet, seed: int = 0
            ) -> UnlearnOutcome:
    """Run `method` over the stages; a method that is not `per_stage` gets one stage holding
    every row."""
    started = time.perf_counter()
    model, reports = parent, {}
    runs = stages if create_unlearner(method, **config).per_stage else [
        Stage("all", stages[0].target.with_rows(concat([s.target.forget for s in stages])))]
    for st in runs:
        unlearner = create_unlearner(method, **config)
        task = UnlearnTask(model, spec, recipe, st.target, retain, seed)
        model = unlearner(task)
        reports[st.name] = dict(getattr(unlearner, "report", {}) or {})
    return UnlearnOutcome(model, method, config, time.perf_counter() - started, reports)
