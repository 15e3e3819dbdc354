"""Benchmark harness: original, Retrain and every method per seed, in one process, one table."""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from forgetflow.bench.runner import RunnerSpec, map_jobs
from forgetflow.core.data.manifest import Manifest, build_manifest
from forgetflow.core.data.sources import DataSourceError, load_source
from forgetflow.core.data.tensors import DataBundle, ImageSet, materialize
from forgetflow.core.evaluate import EvalData, evaluate
from forgetflow.core.forget import precision_recall
from forgetflow.core.metrics import GAP_KEYS, avg_gap
from forgetflow.core.training import (
    TrainConfig,
    load_checkpoint,
    save_checkpoint,
    spec_for,
    train_model,
)
from forgetflow.core.triggers import TriggerError, TriggerSpec, carries_trigger, poison
from forgetflow.core.unlearn import UnlearnTask, create_unlearner, list_unlearners

SCENARIOS = ("class", "random", "subject", "backdoor")
METRICS = ("forget_acc", "retain_acc", "test_acc", "test_acc_remaining", "mia_efficacy",
           "mia_loss_acc", "third_party_auc", "asr", "seconds", "avg_gap", "speedup")
REFERENCE_RECIPE = TrainConfig(model="cnn", epochs=12, batch_size=128, lr=3e-3)


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

    @classmethod
    def build(cls, *, trigger_file: Path | None, methods: str, epochs: int | None,
              cache_dir: Path, **kw) -> BenchConfig:
        """Validate everything up front so a bad flag fails before minutes of training."""
        if kw["scenario"] not in SCENARIOS:
            raise BenchError(f"unknown scenario {kw['scenario']!r}; expected one of {SCENARIOS}")
        names = [m.strip() for m in methods.split(",") if m.strip()]
        known = list_unlearners()
        bad = [m for m in names if m not in known]
        if bad:
            raise BenchError(f"unknown method(s) {bad}; registered: {known}")
        names = [m for m in names if m not in ("retrain",)]
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
                  epochs=epochs or REFERENCE_RECIPE.epochs, **kw)
        if cfg.scenario == "class" and cfg.forget_class is None:
            cfg.forget_class = 0
        return cfg

    def recipe(self, seed: int) -> TrainConfig:
        return TrainConfig(model=self.model, epochs=self.epochs,
                           batch_size=REFERENCE_RECIPE.batch_size, lr=REFERENCE_RECIPE.lr,
                           seed=seed)


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
    if cfg.train_limit:
        bundle = DataBundle(bundle.train.take(np.arange(min(cfg.train_limit, len(bundle.train)))),
                            bundle.third_party, bundle.test, bundle.classes, bundle.source)
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


def _cached_train(cfg: BenchConfig, setup: SeedSetup, data: ImageSet, seed: int, tag: str):
    """Train (or reuse) a model; the key covers data ids+labels+pixels digest and recipe."""
    recipe = cfg.recipe(seed)
    h = hashlib.sha256(json.dumps([cfg.dataset, asdict(recipe), cfg.trigger if cfg.scenario ==
                                   "backdoor" else None]).encode())
    h.update("\n".join(data.ids.tolist()).encode())
    h.update(data.labels.numpy().tobytes())
    path = Path(cfg.cache_dir) / f"{tag}-{h.hexdigest()[:16]}.safetensors"
    if path.exists():
        model, _, _, extra = load_checkpoint(path)
        log(f"[bench] seed {seed}: {tag} loaded from cache {path} "
            f"(trained in {extra['seconds']:.1f}s earlier)")
        return model, extra["seconds"], True
    spec = spec_for(setup.bundle, cfg.model)
    t0 = time.perf_counter()
    model, stats = train_model(data, spec, recipe, progress=False)
    seconds = time.perf_counter() - t0
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, model, spec, recipe, {"seconds": seconds, **stats})
    log(f"[bench] seed {seed}: trained {tag} in {seconds:.1f}s ({stats})")
    return model, seconds, False


def run_seed(cfg: BenchConfig, seed: int) -> tuple[list[dict], dict]:
    setup = setup_seed(cfg, seed)
    forget, retain = setup.train.where(setup.forget_mask), setup.train.where(~setup.forget_mask)
    original, _, orig_cached = _cached_train(cfg, setup, setup.train, seed, "original")
    retrain, retrain_s, re_cached = _cached_train(cfg, setup, retain, seed, "retrain")
    scenario = "samples" if cfg.scenario in ("random", "subject") else cfg.scenario
    trigger = TriggerSpec.from_dict(cfg.trigger) if cfg.trigger else None
    data = EvalData(forget, retain, setup.bundle.test, setup.bundle.third_party, scenario,
                    cfg.forget_class if scenario == "class" else None, trigger)
    rows = [{"method": "original", "seconds": 0.0, **evaluate(original, data, seed)},
            {"method": "retrain", "seconds": retrain_s, **evaluate(retrain, data, seed)}]
    spec = spec_for(setup.bundle, cfg.model)
    for name in cfg.methods:
        task = UnlearnTask(original, spec, cfg.recipe(seed), forget, retain,
                           setup.bundle.third_party, scenario, data.forget_class, trigger, seed)
        unlearner = create_unlearner(name, **cfg.method_configs.get(name, {}))
        t0 = time.perf_counter()
        model = unlearner(task)
        seconds = time.perf_counter() - t0
        row = {"method": name, "seconds": seconds, **evaluate(model, data, seed)}
        if getattr(unlearner, "report", None):
            report = unlearner.report
            row["report"] = {k: report[k] for k in ("steps", "stop", "trace") if k in report}
        rows.append(row)
        log(f"[bench] seed {seed}: {name} {seconds:.2f}s forget={row['forget_acc']:.3f} "
            f"test={row['test_acc']:.3f}")
    for row in rows:
        row["seed"] = seed
        row["avg_gap"] = avg_gap(row, rows[1])
        row["speedup"] = (retrain_s / row["seconds"]) if row["method"] != "original" else None
    info = {**setup.info, "original_cached": orig_cached, "retrain_cached": re_cached}
    return rows, info


def warm_up_torch() -> None:
    """Pay torch's lazy one-off imports (the first optimizer pulls in torch._dynamo, ~5 s on
    a small CPU) before any clock starts: they are process start-up, not any method's work."""
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def run_bench(cfg: BenchConfig, runner: RunnerSpec | None = None) -> dict:
    """All seeds (independent jobs: `runner` may fan them out); rows for original and retrain
    always present."""
    warm_up_torch()
    rows, per_seed = [], []
    jobs = [functools.partial(run_seed, cfg, seed) for seed in range(cfg.seeds)]
    for seed, (seed_rows, info) in enumerate(map_jobs(jobs, runner)):
        rows += seed_rows
        per_seed.append({"seed": seed, **info})
    return {"config": asdict(cfg), "seeds": per_seed, "rows": rows}


def summarize(result: dict) -> dict[str, dict[str, tuple[float, float] | None]]:
    """Mean and std per method and metric (None where not applicable)."""
    out: dict[str, dict] = {}
    for method in dict.fromkeys(r["method"] for r in result["rows"]):
        rows = [r for r in result["rows"] if r["method"] == method]
        out[method] = {}
        for key in METRICS:
            vals = [r[key] for r in rows if r.get(key) is not None]
            out[method][key] = (float(np.mean(vals)), float(np.std(vals))) if vals else None
    return out


def format_table(result: dict) -> str:
    """Markdown table, mean ± std; accuracies in %, avg_gap in points, speedup as ×."""
    summary = summarize(result)
    header = "| method | " + " | ".join(METRICS) + " |"
    lines = [header, "|" + "---|" * (len(METRICS) + 1)]
    for method, stats in summary.items():
        cells = []
        for key in METRICS:
            v = stats[key]
            if v is None:
                cells.append("–")
            elif key == "seconds":
                cells.append(f"{v[0]:.1f} ± {v[1]:.1f}")
            elif key in ("avg_gap",):
                cells.append(f"{v[0]:.2f} ± {v[1]:.2f}")
            elif key == "speedup":
                cells.append(f"{v[0]:.1f}× ± {v[1]:.1f}")
            else:
                cells.append(f"{100 * v[0]:.2f} ± {100 * v[1]:.2f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["BenchConfig", "BenchError", "GAP_KEYS", "format_table", "run_bench", "summarize"]
