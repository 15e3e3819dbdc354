"""`make bench-scale`: seconds vs training-set size (5k -> the full 54k split) for Retrain, dm
and the strongest paper-budget baseline, on the CNN and ResNet-8; at the full split every
scenario on the CNN. Retrain's cost grows with the training set and dm's does not, so the
headline speed-ups are read here, at production size, total over total.

Each row is timed inside one worker process (1 torch thread, 2 workers share the machine),
then evaluated without the depth attacks (forget / retain / test accuracy, MIA, ASR), which
gives avg_gap to that seed's Retrain. Results: bench-results/scale/scale.json, the plot
bench-scale.png and the "Seconds vs training-set size" section of BENCHMARKS.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

from forgetflow.bench.harness import BenchConfig, fashion_config, warm_up_torch
from forgetflow.bench.jobs import Job, eval_data, run_job, seed_data, train_role, unlearn
from forgetflow.bench.run import process_pool
from forgetflow.core.evaluate import evaluate
from forgetflow.core.metrics import avg_gap

OUT = Path("bench-results/scale/scale.json")
FULL = None  # train_limit None: Fashion-MNIST's whole 54k train split
SIZES = (5000, 10000, 20000, FULL)
# scrub: the paper-budget baseline closest to Retrain on the CNN's class rows of the gate
# report (avg_gap 0.08; BENCHMARKS.md), and the only one there that kept gate_pass 5/5
BASELINE = "scrub"
METHODS = ("dm", BASELINE)
SWEPT = {"scenario": "random", "fraction": 0.1}  # the scenario every size runs
EVERY = ({"scenario": "class", "forget_class": 0}, SWEPT, {"scenario": "subject", "subjects": 5},
         {"scenario": "backdoor", "poison_rate": 0.01})
SEEDS = {"cnn": 3, "resnet8": 1}  # ResNet-8 at 54k trains ~8 min a model on one core


def plan() -> list[BenchConfig]:
    """Every (model, size, scenario) block: the swept scenario at each size for both models,
    every scenario at the full split for the CNN."""
    blocks: list[tuple[str, int | None, dict]] = []
    for model in ("cnn", "resnet8"):
        blocks += [(model, size, SWEPT) for size in SIZES]
    blocks += [("cnn", FULL, sc) for sc in EVERY if sc is not SWEPT]
    return [fashion_config(sc, methods=",".join(METHODS), seeds=SEEDS[model], model=model,
                           train_limit=size) for model, size, sc in blocks]


def scale_job(job: Job) -> dict:
    """One timed row: Retrain (trained, or its cached training time) or a method on the
    cached original; then the evaluation without depth attacks."""
    setup = seed_data(job.cfg, job.seed)
    if job.method == "retrain":
        model, seconds, cached = train_role(job.cfg, setup, job.seed, "retrain")
        extra: dict = {"cached": cached}
    else:
        model, seconds, report = unlearn(job, setup, job.seed)
        extra = {"steps": report.get("steps"), "stop": report.get("stop")}
    metrics = evaluate(model, eval_data(job.cfg, setup), job.seed, depth=False)
    return {"method": job.method, "seed": job.seed, "seconds": seconds,
            "train_rows": int(len(setup.train)), "forget_rows": int(setup.forget_mask.sum()),
            **extra, **metrics}


def block_key(cfg: BenchConfig) -> str:
    size = cfg.train_limit or "all"
    return f"{cfg.model}-{size}-{cfg.scenario}"


def run(configs: list[BenchConfig], workers: int) -> dict[str, list[dict]]:
    """Train every original and Retrain first (largest first, so the long ResNet-8 jobs
    start early), then the timed rows."""
    trains = [Job("train", c, s, role) for c in configs for s in c.report_seeds()
              for role in ("original", "retrain")]
    trains.sort(key=lambda j: -(j.cfg.train_limit or 10**9) * (4 if j.cfg.model != "cnn"
                                                                 else 1))
    rows = [Job("scale", c, s, m) for c in configs for s in c.report_seeds()
            for m in ("retrain", *METHODS)]
    with process_pool(workers) as pool:
        list(pool.map(run_job, trains))
        done = list(pool.map(scale_job, rows))
    out: dict[str, list[dict]] = {}
    for job, row in zip(rows, done, strict=True):
        out.setdefault(block_key(job.cfg), []).append(row)
    for block in out.values():
        gold = {r["seed"]: r for r in block if r["method"] == "retrain"}
        for r in block:
            r["avg_gap"] = avg_gap(r, gold[r["seed"]])
    return out


def main() -> None:
    from forgetflow.bench.tune import env_int

    workers = env_int("BENCH_WORKERS", 2, 1)  # a bad value stops before any work
    threads = os.environ.setdefault("FORGETFLOW_THREADS", "1")
    started = dt.datetime.now(dt.UTC)
    warm_up_torch()
    blocks = run(plan(), workers)
    from forgetflow.bench.report import machine, short_commit

    rev = short_commit()
    minutes = (dt.datetime.now(dt.UTC) - started).total_seconds() / 60
    meta = {"command": "make bench-scale", "machine": machine(), "commit": rev,
            "date": f"{started:%Y-%m-%d %H:%M} UTC", "minutes": round(minutes, 1),
            "workers": workers, "threads": threads, "baseline": BASELINE,
            "load_after": os.getloadavg()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"meta": meta, "blocks": blocks}, indent=2))
    from forgetflow.bench.text import replace_section
    from forgetflow.report.bench_plot import SCALE_HEADING, scale_markdown

    bench = Path("BENCHMARKS.md")
    text = bench.read_text() if bench.exists() else "# Benchmarks\n"
    section = scale_markdown(OUT.parent.parent)  # also draws bench-scale.png
    bench.write_text(replace_section(text, SCALE_HEADING, section))
    print(section)
    print("wrote", OUT, "and BENCHMARKS.md", file=sys.stderr)


if __name__ == "__main__":
    main()
