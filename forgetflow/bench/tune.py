"""`make tune`: how dm's defaults are chosen — on tuning seeds (>= 100) only, never on the
seeds `make bench` reports (0..N-1). One-at-a-time variations of DMConfig around the current
defaults, every bench scenario, the same harness and metrics as the bench; the result (JSON and
a markdown table) records which variant wins under a fixed, stated rule."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import numpy as np

from forgetflow.bench.harness import BenchConfig, fashion_config
from forgetflow.bench.jobs import Job, run_job
from forgetflow.bench.run import process_pool
from forgetflow.core.metrics import avg_gap

TUNING_SEED_OFFSET = 100
OUT_DIR = Path("bench-results/tuning")
# coordinate search: each round varies one knob at a time around the best config so far
KNOBS: dict[str, tuple] = {
    "lr": (1e-3, 3e-3, 1e-2),
    "replay_weight": (1.0, 2.0),
    "anchor_weight": (1.0, 2.0),
    "stamped_anchor_weight": (0.0, 1.0, 2.0),
    "min_agreement": (0.95, 0.97, 0.98),
    "stop_z": (0.0, 1.0),
    "check_every": (10, 20),
}


def label(over: dict) -> str:
    return ",".join(f"{k}={v:g}" for k, v in sorted(over.items())) or "default"


def neighbours(base: dict) -> dict[str, dict]:
    """`base` and every config that differs from it in one knob (defaults dropped)."""
    from forgetflow.core.unlearn.dm import DMConfig

    defaults = DMConfig()
    out = {label(base): base}
    for knob, values in KNOBS.items():
        for v in values:
            over = {**base, knob: v}
            over = {k: x for k, x in over.items() if getattr(defaults, k) != x}
            out.setdefault(label(over), over)
    return out


# tuning scenarios: a class that is not among the reported ones, the reported kinds otherwise
SCENARIOS: list[dict] = [
    {"scenario": "class", "forget_class": 2},
    {"scenario": "random", "fraction": 0.1},
    {"scenario": "subject", "subjects": 27},  # ~80 rows on the 10k subset (bench scaling)
    {"scenario": "backdoor", "poison_rate": 0.01},
]
# hard constraints (issue 7's targets that a tuning run can measure): a variant that misses
# one is not eligible; among the eligible, the smallest mean avg_gap wins (if none is, the
# fewest misses, then avg_gap)
CONSTRAINTS = (("class", "forget_acc", 0.01), ("class", "relearn_acc_gap", 5.0),
               ("backdoor", "asr", 0.02))


def tuning_config(sc: dict, seeds: int, train_limit: int) -> BenchConfig:
    cfg = fashion_config(sc, methods="dm", seeds=seeds, model="cnn", train_limit=train_limit,
                         seed_offset=TUNING_SEED_OFFSET)
    if min(cfg.report_seeds()) < TUNING_SEED_OFFSET:
        raise ValueError("tuning must not touch the reported seeds")
    return cfg


def tune_scenario(cfg: BenchConfig, mapper, candidates: dict[str, dict],
                  gold: dict[int, dict] | None) -> tuple[list[dict], dict[int, dict]]:
    """Retrain rows (once), then every candidate on every tuning seed; rows carry avg_gap."""
    seeds = cfg.report_seeds()
    jobs = [] if gold else [Job("row", cfg, s, "retrain", "retrain") for s in seeds]
    jobs += [Job("row", cfg, s, "dm", name, tuple(sorted(over.items())))
             for name, over in candidates.items() for s in seeds]
    rows = list(mapper(run_job, jobs))
    gold = gold or {r["seed"]: r for r in rows if r["method"] == "retrain"}
    rows = [r for r in rows if r["method"] != "retrain"]
    for r in rows:
        r["avg_gap"] = avg_gap(r, gold[r["seed"]]) if "error" not in r else None
        g = gold[r["seed"]]
        for key in ("relearn_acc", "probe_acc"):
            if r.get(key) is not None and g.get(key) is not None:
                r[f"{key}_gap"] = abs(r[key] - g[key]) * 100.0
    return rows, gold


def summarize(results: dict[str, list[dict]]) -> dict[str, dict]:
    """Per candidate: mean avg_gap per scenario, constraint verdicts, misses, overall."""
    table: dict[str, dict] = {}
    names = dict.fromkeys(r["method"] for rows in results.values() for r in rows)
    for name in names:
        entry: dict = {"misses": 0}
        gaps = []
        for scenario, rows in results.items():
            mine = [r for r in rows if r["method"] == name]
            if any(r.get("avg_gap") is None for r in mine):
                entry["misses"] += 1
                continue
            gap = float(np.mean([r["avg_gap"] for r in mine]))
            entry[scenario] = {"avg_gap": gap,
                               "seconds": float(np.mean([r["seconds"] for r in mine]))}
            for key in ("relearn_acc_gap", "probe_acc_gap"):
                vals = [r[key] for r in mine if key in r]
                if vals:
                    entry[scenario][key] = float(np.mean(vals))
            for where, metric, bound in CONSTRAINTS:
                if where == scenario:
                    value = float(np.mean([r.get(metric, np.nan) for r in mine]))
                    entry[scenario][metric] = value
                    entry["misses"] += not value <= bound
            gaps.append(gap)
        entry["mean_avg_gap"] = float(np.mean(gaps)) if gaps else float("inf")
        table[name] = entry
    return table


def winner(table: dict[str, dict]) -> str:
    return min(table, key=lambda k: (table[k]["misses"], table[k]["mean_avg_gap"]))


def markdown(table: dict[str, dict], best: str, meta: dict) -> str:
    scen = [s["scenario"] for s in SCENARIOS]
    head = ["variant", *[f"{s} avg_gap" for s in scen], "class relearn gap",
            "class forget_acc", "backdoor asr", "mean avg_gap", "constraints missed"]
    lines = [f"Tuning run: {json.dumps(meta)}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, e in table.items():
        cells = [f"**{name}**" if name == best else name]
        cells += [f"{e[s]['avg_gap']:.2f}" if s in e else "–" for s in scen]
        cells.append(f"{e['class'].get('relearn_acc_gap', float('nan')):.1f}"
                     if "class" in e else "–")
        cells.append(f"{e['class']['forget_acc']:.3f}" if "class" in e else "–")
        cells.append(f"{e['backdoor']['asr']:.3f}" if "backdoor" in e else "–")
        cells += [f"{e['mean_avg_gap']:.2f}", str(e["misses"])]
        lines.append("| " + " | ".join(cells) + " |")
    rule = ("Rule: fewest missed constraints (class forget_acc <= 0.01, class relearn_acc "
            "within 5 pt of Retrain, backdoor ASR <= 0.02; means over the tuning seeds), then "
            "the smallest mean avg_gap over the scenarios.")
    return "\n".join([*lines, "", rule, f"Winner: `{best}`."])


def env_int(name: str, default: int, minimum: int) -> int:
    """An integer knob from the environment; a bad value stops the run before any work."""
    raw = os.environ.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        sys.exit(f"error: {name} must be an integer >= {minimum}, got {raw!r}")
    return value


def main() -> None:
    seeds = env_int("TUNE_SEEDS", 3, 1)
    rounds = env_int("TUNE_ROUNDS", 2, 1)
    train_limit = env_int("TUNE_TRAIN_LIMIT", 10000, 100)
    workers = env_int("BENCH_WORKERS", 2, 1)
    os.environ.setdefault("FORGETFLOW_THREADS", "1")
    configs = [(sc, tuning_config(sc, seeds, train_limit)) for sc in SCENARIOS]
    started = dt.datetime.now(dt.UTC)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict]] = {sc["scenario"]: [] for sc in SCENARIOS}
    golds: dict[str, dict] = {}
    tried: dict[str, dict] = {}  # label -> overrides of every variant run so far
    best: dict = {}
    pick = "default"
    with process_pool(workers) as pool:
        mapper = lambda fn, jobs: list(pool.map(fn, jobs))  # noqa: E731
        for _sc, cfg in configs:
            list(mapper(run_job, [Job("train", cfg, s, role) for s in cfg.report_seeds()
                                  for role in ("original", "retrain")]))
        for rnd in range(1, rounds + 1):
            todo = {k: v for k, v in neighbours(best).items() if k not in tried}
            tried.update(todo)
            for sc, cfg in configs:
                name = sc["scenario"]
                rows, golds[name] = tune_scenario(cfg, mapper, todo, golds.get(name))
                results[name] += rows
            table = summarize(results)
            pick = winner(table)
            print(f"[tune] round {rnd}: {len(todo)} new variants, best {pick}", file=sys.stderr,
                  flush=True)
            best = tried[pick]
    meta = {"date": f"{started:%Y-%m-%d %H:%M} UTC", "seeds": configs[0][1].report_seeds(),
            "train_limit": train_limit, "model": "cnn", "dataset": "fashion-mnist",
            "scenarios": SCENARIOS}
    (OUT_DIR / "dm.json").write_text(json.dumps({"meta": meta, "rows": results,
                                                 "table": table, "winner": pick,
                                                 "winner_config": best}, indent=2))
    text = markdown(table, pick, meta)
    (OUT_DIR / "dm.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
