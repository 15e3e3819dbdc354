"""`make bench-gpu`: ResNet-18 and ResNet-8 on a CUDA device (bf16 autocast, channels_last),
one seed, class and random-10% requests: original, Retrain and `dm` (methods see the reference
part of the third-party pool, evaluation the holdout), appended to BENCHMARKS.md
with the device, date and commit. Refuses to run (exit 2) without CUDA: a CPU fallback would
take hours on ResNet-18 and record numbers that mean nothing for the GPU path."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np

from forgetflow.core.data.manifest import build_manifest
from forgetflow.core.data.sources import load_source
from forgetflow.core.data.tensors import materialize
from forgetflow.core.evaluate import EvalData, evaluate
from forgetflow.core.metrics import avg_gap
from forgetflow.core.scenarios import CLASS, SAMPLES
from forgetflow.core.training import TrainConfig, spec_for, train_model
from forgetflow.core.unlearn import UnlearnTask, create_unlearner

MODELS = {"resnet18": 12, "resnet8": 12}  # model -> epochs of the reference recipe
SEED = 0
COLUMNS = ("forget_acc", "retain_acc", "test_acc", "test_acc_remaining", "mia_efficacy",
           "relearn_acc", "probe_acc", "seconds", "avg_gap", "speedup")


def _cell(key: str, value: float | None) -> str:
    if value is None:
        return "–"
    if key == "seconds":
        return f"{value:.1f}"
    if key == "avg_gap":
        return f"{value:.2f}"
    if key == "speedup":
        return f"{value:.1f}×"
    return f"{100 * value:.2f}"


def run_model(name: str, epochs: int) -> tuple[list[str], str]:
    """Original, then per scenario Retrain and dm: markdown rows and a note on the original."""
    raw = load_source("fashion-mnist")
    bundle = materialize(raw, build_manifest(raw, seed=SEED))
    spec = spec_for(bundle, name)
    recipe = TrainConfig(model=name, epochs=epochs, batch_size=128, lr=3e-3, seed=SEED)
    t0 = time.perf_counter()
    original, stats = train_model(bundle.train, spec, recipe, progress=False)
    note = (f"{name}: original trained in {time.perf_counter() - t0:.1f} s "
            f"(running train accuracy {100 * stats['train_acc_running']:.2f}%)")
    lines: list[str] = []
    labels = bundle.train.labels.numpy()
    rng = np.random.default_rng(1000 + SEED)
    random_mask = np.zeros(len(labels), dtype=bool)
    random_mask[rng.choice(len(labels), len(labels) // 10, replace=False)] = True
    for scenario, mask, k in ((CLASS, labels == 0, 0), (SAMPLES, random_mask, None)):
        forget, retain = bundle.train.where(mask), bundle.train.where(~mask)
        data = EvalData(scenario.target(forget, bundle.evaluation_pool, k), retain, bundle.test)
        t0 = time.perf_counter()
        retrain, _ = train_model(retain, spec, recipe, progress=False)
        rows = [{"method": "retrain", "seconds": time.perf_counter() - t0,
                 **evaluate(retrain, data, SEED, depth=True)}]
        task = UnlearnTask(original, spec, recipe, scenario.target(forget, bundle.third_party, k),
                           retain, seed=SEED)
        t0 = time.perf_counter()
        unlearned = create_unlearner("dm")(task)
        rows.append({"method": "dm", "seconds": time.perf_counter() - t0,
                     **evaluate(unlearned, data, SEED, depth=True)})
        for row in rows:
            row["avg_gap"] = avg_gap(row, rows[0])
            row["speedup"] = rows[0]["seconds"] / row["seconds"]
            cells = " | ".join(_cell(c, row.get(c)) for c in COLUMNS)
            lines.append(f"| {name} | {scenario} | {row['method']} | {cells} |")
    return lines, note


def main() -> int:
    import torch

    from forgetflow.bench.report import short_commit

    if not torch.cuda.is_available():
        print("bench-gpu: no CUDA device visible (torch.cuda.is_available() is False); this "
              "benchmark only runs on a GPU. Nothing was written.", file=sys.stderr)
        return 2
    device = torch.cuda.get_device_name(0)
    header = ("| model | scenario | method | " + " | ".join(COLUMNS) + " |\n"
              + "|" + "---|" * (len(COLUMNS) + 3))
    results = [run_model(name, epochs) for name, epochs in MODELS.items()]
    lines = [line for rows, _ in results for line in rows]
    notes = "".join(f"- {note}\n" for _, note in results)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"\n## GPU: `make bench-gpu` ({device}, {stamp}, commit {short_commit()})\n\n"
               f"Fashion-MNIST, seed {SEED}, bf16 autocast + channels_last, reference recipe "
               f"({', '.join(f'{m} {e} epochs' for m, e in MODELS.items())}); accuracies in %.\n\n"
               f"{header}\n" + "\n".join(lines) + "\n\n" + notes)
    with Path("BENCHMARKS.md").open("a") as fh:
        fh.write(section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
