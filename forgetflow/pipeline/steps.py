"""Pure steps the Prefect flows call (no Prefect here): training the base model, checking a
request at submit time, choosing the parent, running the unlearning attempts, receipts and the
batch report."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from forgetflow.adapters.datarepo import DataRepo, DataVersion
from forgetflow.adapters.registry import InputRef, ModelRef, Registry, RegistryError
from forgetflow.core.data.tensors import DataBundle, ImageSet
from forgetflow.core.metrics import accuracy, predict_logits
from forgetflow.core.models import Classifier
from forgetflow.core.params import Params, TrainParams, UnlearnParams
from forgetflow.core.training import ModelSpec, TrainConfig, spec_for, train_model
from forgetflow.core.unlearn import UnlearnTask, create_unlearner
from forgetflow.pipeline.batch import Stage, concat, isin_ids
from forgetflow.pipeline.submission import SubmissionError, validate_submission

__all__ = ["SubmissionError", "validate_submission"]  # moved; old imports keep working


class Stopwatch:
    """Wall seconds per named step of a batch, to report the pipeline's own overhead."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.started = time.perf_counter()

    @contextmanager
    def lap(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.laps[name] = self.laps.get(name, 0.0) + time.perf_counter() - t

    def report(self, compute: float) -> dict[str, float]:
        """Laps, total, and overhead = total minus unlearning compute and evaluation."""
        total = time.perf_counter() - self.started
        return {**self.laps, "unlearn_compute": compute, "total": total,
                "overhead": total - compute - self.laps.get("evaluate", 0.0)}


def recipe_of(train: TrainParams, epochs: int | None = None) -> TrainConfig:
    return TrainConfig(model=train.model, epochs=epochs or train.epochs,
                       batch_size=train.batch_size, lr=train.lr,
                       weight_decay=train.weight_decay, seed=train.seed)


def train_base(bundle: DataBundle, recipe: TrainConfig) -> tuple[Classifier, ModelSpec,
                                                                  dict[str, float]]:
    """Train on the version's train split; report test accuracy alongside the loop's stats."""
    spec = spec_for(bundle, recipe.model)
    model, stats = train_model(bundle.train, spec, recipe)  # bar when a TTY watches
    stats["test_acc"] = accuracy(predict_logits(model, bundle.test.images), bundle.test.labels)
    return model, spec, stats


def base_tags(data_version: str) -> dict[str, str]:
    """A base model has no parent and forgot nothing; it is the gate's reference."""
    return {"kind": "base", "parent_version": "", "deletion_request_ids": "",
            "data_version": data_version, "parent_data_version": "", "forget_set_size": "0",
            "forget_set_sha256": "", "method": "", "gate": "passed"}


def data_inputs(repo: DataRepo, version: DataVersion, bundle: DataBundle,
                forget_ids: np.ndarray | None = None, forget_sha: str = "") -> list[InputRef]:
    """What MLflow's log_input records: names, digests and sizes only."""
    src = f"{repo.path}/manifest.csv@{version.tag}"
    refs = [InputRef("train", f"data-registry@{version.tag}:train", src,
                     version.info["manifest_sha256"], len(bundle.train))]
    if forget_ids is not None:
        refs.append(InputRef("retain", f"data-registry@{version.tag}:retain", src,
                             version.info["manifest_sha256"], len(bundle.train)))
        refs.append(InputRef("forget", "forget-set", f"{repo.path}/exclusions.csv@{version.tag}",
                             forget_sha, len(forget_ids)))
    return refs


def parent_of(registry: Registry, name: str) -> ModelRef:
    """The model a batch unlearns from: the newest gate-passed version, i.e. the challenger
    when it is newer than the champion (so an unpromoted batch is never undone)."""
    champion = registry.alias(name, "champion")
    if champion is None:
        raise RegistryError(f"model {name!r} has no champion: run `forgetflow train` first")
    challenger = registry.alias(name, "challenger")
    if challenger and int(challenger.version) > int(champion.version):
        return challenger
    return champion


def attempts(unlearn: UnlearnParams) -> list[tuple[str, dict[str, Any]]]:
    """The method of params, then each escalation step (configs merge for the same method)."""
    plan = [(unlearn.method, dict(unlearn.config))]
    for step in unlearn.escalation:
        base = dict(unlearn.config) if step.method == unlearn.method else {}
        plan.append((step.method, {**base, **step.config}))
    return plan


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
    """One unlearning run for the batch: the stages chained through one model (a retrain
    needs no stages: it trains once on the retain set)."""
    started = time.perf_counter()
    model, reports = parent, {}
    runs = stages if method != "retrain" else [
        Stage("all", stages[0].scenario, concat([s.forget for s in stages]),
              stages[0].third_party, stages[0].forget_class, stages[0].trigger)]
    for st in runs:
        unlearner = create_unlearner(method, **config)
        task = UnlearnTask(model, spec, recipe, st.forget, retain, st.third_party, st.scenario,
                           st.forget_class, st.trigger, seed)
        model = unlearner(task)
        reports[st.name] = dict(getattr(unlearner, "report", {}) or {})
    return UnlearnOutcome(model, method, config, time.perf_counter() - started, reports)


def batch_markdown(batch: dict[str, Any], checks: list[dict], decisions: list[dict]) -> str:
    """The Prefect artifact: requests, forget-set size, metrics, gate verdict, version."""
    lines = [f"# Deletion batch `{batch['batch_id']}`", "",
             f"- requests: {', '.join(map(str, batch['request_ids'])) or '—'}",
             f"- rejected: {batch.get('rejected') or '—'}",
             f"- forget set: {batch.get('forget_set_size')} samples "
             f"(sha256 `{str(batch.get('forget_set_sha256'))[:16]}…`)",
             f"- data version: {batch.get('parent_data_version')} → {batch.get('data_version')}",
             f"- model: `{batch['model_name']}` v{batch.get('parent_version')} → "
             f"v{batch.get('model_version')} (method `{batch.get('method')}`)",
             f"- **gate: {batch.get('gate')}**", "", "| check | value | max | passed |",
             "|---|---|---|---|"]
    for c in checks:
        value = "—" if c["value"] is None else f"{c['value']:.4f}"
        lines.append(f"| {c['check']} | {value} | {c['max']} | {c['passed']} |")
    lines += ["", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in sorted(batch.get("metrics", {}).items())]
    lines += ["", "Attempts:", ""]
    lines += [f"{i + 1}. `{d['method']}` {d.get('config', {})}: gate {d['gate']} "
              f"({d['seconds']:.1f} s)" for i, d in enumerate(decisions)]
    return "\n".join(lines) + "\n"


def run_params(params: Params, attempt_method: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run params of an unlearned version: the method, its config and the gate thresholds."""
    return {"unlearn_method": attempt_method, "unlearn_config": config,
            **{f"gate.{k}": v for k, v in params.gate.model_dump().items()}}


def without_ids(bundle: DataBundle, ids: np.ndarray) -> DataBundle:
    """The bundle of the next data version, cut from this one instead of reloaded."""
    def cut(s: ImageSet) -> ImageSet:
        return s.where(~isin_ids(s.ids, ids))

    return DataBundle(cut(bundle.train), cut(bundle.third_party), cut(bundle.test),
                      bundle.classes, bundle.source,
                      None if bundle.holdout is None else cut(bundle.holdout))
