"""Compute tasks: training, unlearning, evaluation. They carry GPU_TAG so a tag concurrency
limit keeps one per device; no retries (a failed run is a real failure, not a blip)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from forgetflow.core.data.tensors import DataBundle, ImageSet
from forgetflow.core.models import Classifier
from forgetflow.core.params import EvalParams, GateParams
from forgetflow.core.training import ModelSpec, TrainConfig, train_base
from forgetflow.pipeline.batch import Stage
from forgetflow.pipeline.gate import GateResult, run_gate
from forgetflow.pipeline.unlearning import UnlearnOutcome, unlearn
from tasks import GPU_TAG

COMPUTE = {"tags": [GPU_TAG], "cache_policy": NO_CACHE, "persist_result": False}


@task(name="train-base-model", **COMPUTE)
def train(bundle: DataBundle, recipe: TrainConfig) -> tuple[Classifier, ModelSpec, dict]:
    return train_base(bundle, recipe)


@task(name="unlearn", **COMPUTE)
def unlearn_batch(method: str, config: dict[str, Any], parent: Classifier, spec: ModelSpec,
                  recipe: TrainConfig, stages: list[Stage], retain: ImageSet,
                  seed: int = 0) -> UnlearnOutcome:
    return unlearn(method, config, parent, spec, recipe, stages, retain, seed)


@task(name="evaluate-and-gate", **COMPUTE)
def gate(model: Classifier, parent: Classifier, stages: list[Stage], bundle: DataBundle,
         forgotten: list[int], thresholds: GateParams, caps: EvalParams,
         seed: int = 0, holdout: ImageSet | None = None, exact: bool = False) -> GateResult:
    """`holdout`: the parent version's evaluation-only split (it still holds the forgotten
    classes a class stage is compared against); unlearning used the reference split.
    `exact`: a retrain without the rows (its depth checks are recorded, not gating)."""
    return run_gate(model, parent, stages, bundle.train, bundle.test, bundle.third_party,
                    forgotten, thresholds, caps, seed, holdout=holdout, exact=exact)
