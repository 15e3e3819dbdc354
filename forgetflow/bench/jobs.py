"""Bench jobs: pure, picklable units of work that a runner maps (in-process, a process pool,
or Dask). Each rebuilds its inputs from (config, seed), which is deterministic, and reads
original/Retrain models from the on-disk cache that the `train` phase fills.

Phases of one scenario (forgetflow.bench.run.run_scenario):
1. train  - original, Retrain, a fresh-seed Retrain (noise floor), and for the epsilon score
            N retrained models of set A (the reference) and N of set B (the noise floor);
2. rows   - one evaluated row per (seed, method): every metric, depth attacks included;
3. matched - each method again at dm's wall-clock of that seed (`budget` = dm s / method s);
4. epsilon - per model k, the forget set's logit-scaled confidences (N per method).
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import asdict, dataclass

import numpy as np

from forgetflow.bench.gate_rows import gate_row, ladder
from forgetflow.bench.harness import BenchConfig, SeedSetup, cached_train, log, setup_seed
from forgetflow.bench.relearn_budget import load_budget
from forgetflow.core.data.tensors import ImageSet
from forgetflow.core.epsilon import logit_confidence
from forgetflow.core.evaluate import EvalData, evaluate
from forgetflow.core.metrics import accuracy, predict_logits
from forgetflow.core.training import spec_for
from forgetflow.core.unlearn import UnlearnTask, create_unlearner
from forgetflow.pipeline.batch import Stage

FRESH_OFFSET = 500        # Retrain of the noise-floor row: recipe seed + 500
EPS_SET_A = 10_000        # epsilon reference retrains: recipe seed 10_000 + k
EPS_SET_B = 20_000        # epsilon noise-floor retrains: recipe seed 20_000 + k
UTILITY_CAP = 5000        # retain rows for RA in the epsilon score


@dataclass(frozen=True)
class Job:
    """kind: "train" (role: original | retrain | retrain_fresh | eps_a | eps_b), "row",
    "epsilon". `method` is a registry name, or retrain/retrain_fresh for the gold rows;
    `label` names the table row; `overrides` go over the method's config."""

    kind: str
    cfg: BenchConfig
    seed: int
    method: str = ""
    label: str = ""
    overrides: tuple[tuple[str, float], ...] = ()
    model_index: int = 0


@functools.lru_cache(maxsize=2)
def _setup(cfg_json: str, seed: int) -> SeedSetup:
    return setup_seed(BenchConfig(**json.loads(cfg_json)), seed)


def seed_data(cfg: BenchConfig, seed: int) -> SeedSetup:
    """setup_seed, memoised per process (a worker runs many jobs of one seed)."""
    return _setup(json.dumps(asdict(cfg), sort_keys=True), seed)


def _sets(setup: SeedSetup) -> tuple[ImageSet, ImageSet]:
    return setup.train.where(setup.forget_mask), setup.train.where(~setup.forget_mask)


def train_role(cfg: BenchConfig, setup: SeedSetup, seed: int, role: str, k: int = 0):
    forget, retain = _sets(setup)
    if role == "original":
        return cached_train(cfg, setup, setup.train, seed, "original")
    recipe_seed = {"retrain": seed, "retrain_fresh": seed + FRESH_OFFSET,
                   "eps_a": EPS_SET_A + k, "eps_b": EPS_SET_B + k}[role]
    return cached_train(cfg, setup, retain, recipe_seed, "retrain")


def unlearn(job: Job, setup: SeedSetup, task_seed: int):
    """Run the job's method on the cached original; returns (model, seconds, report)."""
    cfg = job.cfg
    forget, retain = _sets(setup)
    original, _, _ = train_role(cfg, setup, job.seed, "original")
    task = UnlearnTask(original, spec_for(setup.bundle, cfg.model), cfg.recipe(job.seed),
                       cfg.target(forget, setup.bundle.third_party), retain, task_seed)
    unlearner = create_unlearner(job.method, **{**cfg.method_configs.get(job.method, {}),
                                                **dict(job.overrides)})
    t0 = time.perf_counter()
    model = unlearner(task)
    seconds = time.perf_counter() - t0
    report = getattr(unlearner, "report", None) or {}
    kept = ("steps", "stop", "trace", "setup_seconds")
    return model, seconds, {k: report[k] for k in kept if k in report}


def eval_data(cfg: BenchConfig, setup: SeedSetup) -> EvalData:
    """Evaluation compares against the holdout split, never the reference part methods use."""
    forget, retain = _sets(setup)
    return EvalData(cfg.target(forget, setup.bundle.evaluation_pool), retain, setup.bundle.test)


def run_job(job: Job) -> dict:
    """The one function a runner maps; dispatches on job.kind."""
    setup = seed_data(job.cfg, job.seed)
    if job.kind == "train":
        _, seconds, cached = train_role(job.cfg, setup, job.seed, job.method, job.model_index)
        return {"role": job.method, "seed": job.seed, "k": job.model_index, "seconds": seconds,
                "cached": cached}
    if job.kind == "row":
        return _row(job, setup)
    if job.kind == "epsilon":
        return _epsilon_model(job, setup)
    raise ValueError(f"unknown job kind {job.kind!r}")


def _row(job: Job, setup: SeedSetup) -> dict:
    row: dict = {"method": job.label or job.method, "base": job.method, "seed": job.seed}
    if job.method in ("retrain", "retrain_fresh"):
        model, seconds, cached = train_role(job.cfg, setup, job.seed, job.method)
        row["cached"] = cached
    else:
        if job.overrides:
            row["overrides"] = dict(job.overrides)
        try:
            model, seconds, report = unlearn(job, setup, job.seed)
        except FloatingPointError as exc:  # a method that diverges is a result, not a crash
            log(f"[bench] {job.cfg.scenario} seed {job.seed}: {row['method']} FAILED: {exc}")
            return {**row, "error": str(exc), "seconds": None}
        if report:
            row["report"] = report
    row["seconds"] = seconds
    # the relearning attack at the budget calibrated on tuning seeds (forgetflow.bench.depth)
    relearn, row["relearn_budget"] = load_budget(job.cfg.dataset, job.cfg.model,
                                                 job.cfg.scenario)
    row.update(evaluate(model, eval_data(job.cfg, setup), job.seed, depth=True,
                        relearn=relearn))
    row.update(_gated(job, setup, model))
    if job.method == "dm" and not job.overrides and not row["gate_pass"]:
        row.update(_next_rungs(job, setup))
    log(f"[bench] {job.cfg.scenario} seed {job.seed}: {row['method']} {seconds:.2f}s "
        f"forget={row['forget_acc']:.3f} test={row['test_acc']:.3f} "
        f"relearn={row.get('relearn_acc')}")
    return row


def _gated(job: Job, setup: SeedSetup, model) -> dict:
    """gate_pass: the production gate (params.yaml `gate`, depth checks included) on this row."""
    forget, retain = _sets(setup)
    original, _, _ = train_role(job.cfg, setup, job.seed, "original")
    target = job.cfg.target(forget, setup.bundle.third_party)
    stage = Stage(target.scenario.name, target)  # names the gate's records as a batch would
    return gate_row(model, original, stage, retain, setup.bundle.test,
                    setup.bundle.third_party, setup.bundle.holdout, job.seed)


def _next_rungs(job: Job, setup: SeedSetup) -> dict:
    """The escalation ladder after a failed dm: each later dm rung of params.yaml
    `unlearn.escalation` in turn; a retrain rung is the Retrain row. `ladder_rung` is the
    first rung the gate accepts, `ladder_seconds` the unlearning time up to it."""
    seconds = 0.0
    for rung, (method, config) in enumerate(ladder()[1:], start=2):
        if method != "dm":
            return {"ladder_rung": rung, "ladder_seconds": None}
        step = Job("row", job.cfg, job.seed, method, overrides=tuple(sorted(config.items())))
        model, spent, _ = unlearn(step, setup, job.seed)
        seconds += spent
        if _gated(job, setup, model)["gate_pass"]:
            return {"ladder_rung": rung, "ladder_seconds": seconds}
    return {"ladder_rung": None, "ladder_seconds": seconds}


def _epsilon_model(job: Job, setup: SeedSetup) -> dict:
    """One of the N models behind an epsilon score: phi on the forget set, RA and TA."""
    forget, retain = _sets(setup)
    if job.method in ("retrain", "retrain_fresh"):
        role = "eps_a" if job.method == "retrain" else "eps_b"
        model, _, _ = train_role(job.cfg, setup, job.seed, role, job.model_index)
    else:
        try:
            model, _, _ = unlearn(job, setup, job.model_index)
        except FloatingPointError as exc:
            return {"label": job.label or job.method, "k": job.model_index, "error": str(exc)}
    rows = np.random.default_rng(job.seed).permutation(len(retain))[:UTILITY_CAP]
    kept = retain.take(np.sort(rows))
    log(f"[bench] {job.cfg.scenario} epsilon: {job.label or job.method} model {job.model_index}")
    return {"label": job.label or job.method, "k": job.model_index,
            "phi": logit_confidence(predict_logits(model, forget.images), forget.labels),
            "retain_acc": accuracy(predict_logits(model, kept.images), kept.labels),
            "test_acc": accuracy(predict_logits(model, setup.bundle.test.images),
                                 setup.bundle.test.labels)}
