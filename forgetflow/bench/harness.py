"""Benchmark configuration and per-seed data: what every bench job (forgetflow.bench.jobs)
rebuilds deterministically from (config, seed), plus the original/Retrain model cache."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from forgetflow.core.attacks import ProbeError, final_linear
from forgetflow.core.data.manifest import Manifest, build_manifest
from forgetflow.core.data.sources import DataSourceError, load_source
from forgetflow.core.data.tensors import DataBundle, ImageSet, materialize
from forgetflow.core.forget import precision_recall
from forgetflow.core.models import build_model
from forgetflow.core.scenarios import ForgetTarget, scenario_named
from forgetflow.core.training import (
    TrainConfig,
    load_checkpoint,
    save_checkpoint,
    spec_for,
    train_model,
)
from forgetflow.core.triggers import TriggerError, TriggerSpec, carries_trigger, poison
from forgetflow.core.unlearn import list_unlearners

# each bench case picks its forget rows its own way; what it then forgets is one scenario
CASE_SCENARIO = {"class": "class", "random": "samples", "subject": "samples",
                 "backdoor": "backdoor"}
SCENARIOS = tuple(CASE_SCENARIO)  # the bench's case names
REFERENCE_RECIPE = TrainConfig(model="cnn", epochs=12, batch_size=128, lr=3e-3)
MAX_EPSILON_MODELS = 64  # each needs one retrain and one unlearning run per method
SANITY = ("identity", "logit_mask")


class BenchError(ValueError):
    """Invalid benchmark configuration; reported before any work is done."""


@dataclass
class BenchConfig:
    dataset: str
    scenario: str
    methods: list[str]
    seeds: int
    data_root: str | None = None
    forget_class: int | None = None
    fraction: float = 0.1
    subjects: int = 5
    trigger: dict | None = None
    poison_rate: float = 0.01
    model: str = "cnn"
    epochs: int = REFERENCE_RECIPE.epochs
    train_limit: int | None = None
    cache_dir: str = "bench-cache"
    method_configs: dict = field(default_factory=dict)
    seed_offset: int = 0
    epsilon_models: int = 0
    epsilon_methods: list[str] | None = None
    time_matched: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, *, trigger_file: Path | None, methods: str, epochs: int | None,
              cache_dir: Path, time_matched: str = "", epsilon_methods: str | None = None,
              **kw) -> BenchConfig:
        """Validate everything up front so a bad flag fails before minutes of training."""
        if kw["scenario"] not in SCENARIOS:
            raise BenchError(f"unknown scenario {kw['scenario']!r}; expected one of {SCENARIOS}")
        known = list_unlearners()
        names = _method_list(methods, known, "method")
        names = [m for m in SANITY if m not in names] + [m for m in names if m != "retrain"]
        if kw["scenario"] != "class":
            names = [m for m in names if m != "logit_mask"]
        matched = _method_list(time_matched, known, "time-matched method")
        eps_names = None if epsilon_methods is None else \
            _method_list(epsilon_methods, known + ["retrain"], "epsilon method")
        n_eps = kw.get("epsilon_models", 0)
        if n_eps and not 2 <= n_eps <= MAX_EPSILON_MODELS:
            raise BenchError(f"--epsilon-models must be 0 (off) or in 2..{MAX_EPSILON_MODELS}, "
                             f"got {n_eps}")
        if kw.get("train_limit") is not None and kw["train_limit"] < 100:
            raise BenchError(f"--train-limit must be >= 100, got {kw['train_limit']}")
        if kw["scenario"] == "random" and not 0.0 < kw["fraction"] < 1.0:
            raise BenchError(f"--fraction must be in (0, 1), got {kw['fraction']}")
        if kw["subjects"] < 1:
            raise BenchError("--subjects must be >= 1")
        if epochs is not None and epochs < 1:
            raise BenchError("--epochs must be >= 1")
        trigger = None
        if kw["scenario"] == "backdoor":
            if not 0.0 < kw["poison_rate"] < 1.0:
                raise BenchError(f"--poison-rate must be in (0, 1), got {kw['poison_rate']}")
            try:
                spec = TriggerSpec.from_file(trigger_file) if trigger_file else TriggerSpec()
            except TriggerError as exc:
                raise BenchError(str(exc)) from exc
            trigger = spec.to_dict()
        cfg = cls(methods=names, trigger=trigger, cache_dir=str(cache_dir),
                  epochs=epochs or REFERENCE_RECIPE.epochs, time_matched=matched,
                  epsilon_methods=eps_names, **kw)
        _check_feature_hook(cfg)
        if cfg.scenario == "class" and cfg.forget_class is None:
            cfg.forget_class = 0
        return cfg

    def report_seeds(self) -> list[int]:
        """Seeds 0..N-1 for reported numbers; tuning runs pass seed_offset >= 100."""
        return [self.seed_offset + i for i in range(self.seeds)]

    def target(self, forget: ImageSet, pool: ImageSet) -> ForgetTarget:
        """What this case's rows are to a method, the gate and the evaluation."""
        trigger = TriggerSpec.from_dict(self.trigger) if self.trigger else None
        scenario = scenario_named(CASE_SCENARIO[self.scenario])
        return scenario.target(forget, pool, self.forget_class, trigger)

    def recipe(self, seed: int) -> TrainConfig:
        return TrainConfig(model=self.model, epochs=self.epochs,
                           batch_size=REFERENCE_RECIPE.batch_size, lr=REFERENCE_RECIPE.lr,
                           seed=seed)


SCENARIO_DEFAULTS = {"forget_class": None, "fraction": 0.1, "subjects": 5, "poison_rate": 0.01}


def fashion_config(sc: dict, **kw) -> BenchConfig:
    """The Fashion-MNIST config of one scenario dict ({"scenario": ..., its values}), as the
    bench profiles and the tuning run build it: Debian data, default trigger and recipe."""
    return BenchConfig.build(dataset="fashion-mnist", data_root=None, trigger_file=None,
                             epochs=None, cache_dir=Path("bench-cache"), **kw,
                             **{**SCENARIO_DEFAULTS, **sc})


def _method_list(text: str | None, known: list[str], what: str) -> list[str]:
    names = [m.strip() for m in (text or "").split(",") if m.strip()]
    bad = [m for m in names if m not in known]
    if bad:
        raise BenchError(f"unknown {what}(s) {bad}; registered: {known}")
    return names


def _check_feature_hook(cfg: BenchConfig) -> None:
    """probe_acc and logit_mask need `embed` + a linear last layer: fail before any work."""
    try:
        final_linear(build_model(cfg.model, 1, 10, 28, [0.5], [0.5]))
    except ProbeError as exc:
        raise BenchError(f"--model {cfg.model}: {exc}") from exc
    except ValueError as exc:
        raise BenchError(str(exc)) from exc


@dataclass
class SeedSetup:
    bundle: DataBundle
    train: ImageSet
    forget_mask: np.ndarray
    info: dict


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _load_bundle(cfg: BenchConfig, seed: int) -> tuple[DataBundle, Manifest]:
    try:
        raw = load_source(cfg.dataset, cfg.data_root)
    except DataSourceError as exc:
        raise BenchError(str(exc)) from exc
    manifest = build_manifest(raw, seed=seed)
    bundle = materialize(raw, manifest)
    if cfg.train_limit and cfg.train_limit < len(bundle.train):
        # a seeded random subset (documented in BENCHMARKS.md), sorted to keep source order
        rows = np.sort(np.random.default_rng([seed, 7]).choice(len(bundle.train),
                                                               cfg.train_limit, replace=False))
        bundle = replace(bundle, train=bundle.train.take(rows))
    return bundle, manifest


def setup_seed(cfg: BenchConfig, seed: int) -> SeedSetup:
    """Data, (poisoned) training set and forget mask for one seed; all seeded."""
    bundle, manifest = _load_bundle(cfg, seed)
    train, info = bundle.train, {}
    rng = np.random.default_rng(1000 + seed)
    labels = train.labels.numpy()
    if cfg.scenario == "class":
        if not 0 <= cfg.forget_class < bundle.num_classes:
            raise BenchError(f"--forget-class {cfg.forget_class} outside 0..{bundle.num_classes-1}")
        mask = labels == cfg.forget_class
    elif cfg.scenario == "random":
        mask = np.zeros(len(train), dtype=bool)
        mask[rng.choice(len(train), max(1, int(round(cfg.fraction * len(train)))), False)] = True
    elif cfg.scenario == "subject":
        subject_of = dict(zip(manifest.ids, manifest.subject, strict=True))
        subjects = np.asarray([subject_of[i] for i in train.ids], dtype=object)
        chosen = rng.choice(np.unique(subjects), cfg.subjects, replace=False)
        mask = np.isin(subjects, chosen)
        info["subjects"] = sorted(chosen.tolist())
    else:
        spec = TriggerSpec.from_dict(cfg.trigger)
        try:
            spec.check(bundle.image_shape, bundle.num_classes)
        except TriggerError as exc:
            raise BenchError(str(exc)) from exc
        train, poisoned_ids = poison(train, spec, cfg.poison_rate, seed)
        mask = carries_trigger(train.images, spec)
        precision, recall = precision_recall(train.ids[mask], poisoned_ids)
        info.update(poisoned=len(poisoned_ids), extraction_precision=precision,
                    extraction_recall=recall)
    if mask.sum() == 0 or mask.all():
        raise BenchError(f"the forget set has {int(mask.sum())} of {len(mask)} samples")
    info["forget_size"] = int(mask.sum())
    return SeedSetup(bundle, train, mask, info)


def cached_train(cfg: BenchConfig, setup: SeedSetup, data: ImageSet, seed: int, tag: str):
    """Train (or reuse) a model; the key covers data ids+labels+pixels digest and recipe."""
    recipe = cfg.recipe(seed)
    h = hashlib.sha256(json.dumps([cfg.dataset, asdict(recipe), cfg.trigger if cfg.scenario ==
                                   "backdoor" else None]).encode())
    h.update("\n".join(data.ids.tolist()).encode())
    h.update(data.labels.numpy().tobytes())
    h.update(data.images.numpy().tobytes())  # an image folder may change under the same ids
    path = Path(cfg.cache_dir) / f"{tag}-{h.hexdigest()[:16]}.safetensors"
    if path.exists():
        model, _, _, extra = load_checkpoint(path)
        return model, extra["seconds"], True
    spec = spec_for(setup.bundle, cfg.model)
    t0 = time.perf_counter()
    model, stats = train_model(data, spec, recipe, progress=False)
    seconds = time.perf_counter() - t0
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, model, spec, recipe, {"seconds": seconds, **stats})
    log(f"[bench] seed {seed}: trained {tag} in {seconds:.1f}s ({stats})")
    return model, seconds, False


def warm_up_torch() -> None:
    """Pay torch's lazy one-off imports (the first optimizer pulls in torch._dynamo, ~5 s on
    a small CPU) before any clock starts: they are process start-up, not any method's work."""
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
