"""MLflow registry tasks; network/DB blips are retried."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from forgetflow.adapters.registry import InputRef, ModelRef, Registry
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.models import Classifier
from forgetflow.core.training import ModelSpec, TrainConfig
from forgetflow.pipeline.parent import parent_of

RETRY = {"retries": 2, "retry_delay_seconds": 3, "cache_policy": NO_CACHE, "persist_result": False}


def _registry() -> Registry:
    return Registry(Workspace.from_env())


@task(name="load-parent-model", **RETRY)
def load_parent(name: str) -> tuple[ModelRef, Classifier, ModelSpec, TrainConfig]:
    registry = _registry()
    ref = parent_of(registry, name)
    return (ref, *registry.load(ref))


@task(name="register-model", **RETRY)
def register(name: str, model: Classifier, spec: ModelSpec, recipe: TrainConfig,
             tags: dict[str, str], metrics: dict[str, float | None], inputs: list[InputRef],
             params: dict[str, Any] | None = None) -> ModelRef:
    return _registry().register(name, model, spec, recipe, tags, metrics, inputs, params)


@task(name="set-alias", **RETRY)
def set_alias(name: str, alias: str, version: str) -> None:
    _registry().set_alias(name, alias, version)
