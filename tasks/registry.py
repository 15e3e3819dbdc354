"""MLflow registry tasks; network/DB blips are retried."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from forgetflow.adapters.registry import InputRef, ModelRef, Registry
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.models import Classifier
from forgetflow.core.training import ModelSpec, TrainConfig
from forgetflow.pipeline.parent import parent_of
from tasks import unless_lease_lost

RETRY = {"retries": 2, "retry_delay_seconds": 3, "cache_policy": NO_CACHE, "persist_result": False,
         "retry_condition_fn": unless_lease_lost}


def _registry() -> Registry:
    return Registry(Workspace.from_env())


@task(name="load-parent-model", **RETRY)
def load_parent(name: str, version: str | None = None
                ) -> tuple[ModelRef, Classifier, ModelSpec, TrainConfig]:
    """The parent a batch unlearns from; `version`: the one a resumed batch recorded."""
    registry = _registry()
    ref = registry.ref(name, version) if version else parent_of(registry, name)
    return (ref, *registry.load(ref))


@task(name="find-batch-version", **RETRY)
def batch_version(name: str, batch_id: str) -> ModelRef | None:
    """The version this batch already registered (a resumed batch), if any."""
    return _registry().version_of_batch(name, batch_id)


@task(name="register-batch-version", **RETRY)
def register_batch(name: str, batch_id: str, model: Classifier, spec: ModelSpec,
                   recipe: TrainConfig, tags: dict[str, str], metrics: dict[str, float | None],
                   inputs: list[InputRef], params: dict[str, Any],
                   fence: Callable[[], None] | None = None) -> ModelRef:
    """Exactly one version per batch: an existing one is returned; runs a killed attempt
    left without a version are deleted before registering. `fence` as in Registry.register."""
    registry = _registry()
    existing = registry.version_of_batch(name, batch_id)
    if existing is not None:
        return existing
    registry.discard_runs_of_batch(batch_id)
    return registry.register(name, model, spec, recipe, tags, metrics, inputs, params, fence)


@task(name="version-metrics", **RETRY)
def metrics_of(ref: ModelRef) -> dict[str, float]:
    return _registry().metrics(ref)


@task(name="register-model", **RETRY)
def register(name: str, model: Classifier, spec: ModelSpec, recipe: TrainConfig,
             tags: dict[str, str], metrics: dict[str, float | None], inputs: list[InputRef],
             params: dict[str, Any] | None = None) -> ModelRef:
    return _registry().register(name, model, spec, recipe, tags, metrics, inputs, params)


@task(name="set-alias", **RETRY)
def set_alias(name: str, alias: str, version: str) -> None:
    _registry().set_alias(name, alias, version)


@task(name="offer-challenger", **RETRY)
def offer_challenger(name: str, version: str) -> None:
    """Point `challenger` at this version unless a newer one holds it (idempotent)."""
    registry = _registry()
    current = registry.alias(name, "challenger")
    if current is None or int(current.version) <= int(version):
        registry.set_alias(name, "challenger", version)
