"""`make bench` / `make bench-quick`: the reference scenarios one after another at a fixed
thread count, then BENCHMARKS.md rewritten with the tables, targets with per-seed pass counts,
the Retrain-vs-Retrain noise floor, load averages, the command, the machine and the date.
Targets are checked here, never in unit tests."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from forgetflow.bench.aggregate import METRICS, format_table, pareto, pass_counts, summarize
from forgetflow.bench.harness import BenchConfig
from forgetflow.bench.run import run_scenario, serial_map
from forgetflow.bench.text import (
    KEEP_MARKER,
    PREAMBLE,
    kept_sections,
    noise_floor_table,
    where_dm_loses,
)
from forgetflow.report.bench_plot import bench_extras

OUT_DIR = Path("bench-results")
PAPER = "finetune,neggrad_plus,random_label,l1_sparse,salun,scrub,scrub_rewind"
HEAD = "finetune_head,random_label_head,neggrad_plus_head,scrub_head"
PROFILES: dict[str, dict] = {
    # ~60-80 min on 2 cores: every baseline at its paper budget, time-matched and head-only
    "full": {"seeds": 3, "train_limit": 10000, "methods": f"dm,{PAPER},{HEAD}",
             "time_matched": PAPER, "epsilon_models": 8, "epsilon_methods": None},
    # <= ~20 min on a quiet 2-core machine: every column, fewer rows (3 seeds: the targets'
    # minimum)
    "quick": {"seeds": 3, "train_limit": 5000, "methods": f"dm,finetune,scrub,{HEAD}",
              "time_matched": "finetune,scrub", "epsilon_models": 8, "epsilon_methods": None},
}
EPSILON_SCENARIOS = ("class", "random")  # the target: class and random-subset rows
FULL_TRAIN = 54000  # Fashion-MNIST's train split after the 10% third-party pool


def scenarios() -> list[dict]:
    """The reference set: one class, random 10%, a few subjects, a 1% BadNets backdoor."""
    return [
        {"scenario": "class", "forget_class": 0},
        {"scenario": "random", "fraction": 0.1},
        {"scenario": "subject", "subjects": 5},
        {"scenario": "backdoor", "poison_rate": 0.01},
    ]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, {dev}, "
            f"Python {platform.python_version()}, torch {torch.__version__}")


def build_config(sc: dict, profile: dict) -> BenchConfig:
    methods = profile["methods"] + (",finetune_stamped" if sc["scenario"] == "backdoor" else "")
    matched = profile["time_matched"] + (",finetune_stamped" if sc["scenario"] == "backdoor"
                                         else "")
    if sc["scenario"] == "backdoor":  # rewind needs a meaningful forget error: not here
        methods = ",".join(m for m in methods.split(",") if m != "scrub_rewind")
        matched = ",".join(m for m in matched.split(",") if m != "scrub_rewind")
    eps = profile["epsilon_models"] if sc["scenario"] in EPSILON_SCENARIOS else 0
    if sc["scenario"] == "subject" and profile["train_limit"]:
        # subjects own 20 rows of all 70k; on a training subset each keeps only a few, so
        # scale the count to keep the forget set near what 5 subjects hold in the full split
        sc = {**sc, "subjects": round(sc["subjects"] * FULL_TRAIN / profile["train_limit"])}
    return BenchConfig.build(
        dataset="fashion-mnist", data_root=None, trigger_file=None, methods=methods,
        epochs=None, cache_dir=Path("bench-cache"), seeds=profile["seeds"], model="cnn",
        train_limit=profile["train_limit"], time_matched=matched, epsilon_models=eps,
        epsilon_methods=profile["epsilon_methods"],
        **{"forget_class": None, "fraction": 0.1, "subjects": 5, "poison_rate": 0.01, **sc})


def section(sc: dict, result: dict) -> str:
    name = sc["scenario"]
    if name == "subject":  # the count actually run (scaled with the training subset)
        sc = {**sc, "subjects": result["config"]["subjects"]}
    load = result["load_average"]
    parts = [f"### {name} ({json.dumps(sc)})", "", format_table(result), "",
             f"Per-seed setup: `{json.dumps(result['seeds'])}`", "",
             f"Load average (1/5/15 min) before: {load['before']}, after: {load['after']}", "",
             "Noise floor (|retrain_fresh − retrain| of the means; accuracies in points):", "",
             noise_floor_table(summarize(result), METRICS), "",
             "Targets for `dm` (on the means; seeds passing alone in brackets):",
             *pass_counts(result, "dm"),
             f"- rows beating dm on both mean seconds and mean avg_gap (Pareto, every row): "
             f"{', '.join(pareto(result, 'dm')) or 'none'}"]
    parts += ["", "Where dm stands on the depth/privacy metrics (distance to Retrain; rows that "
              "are closer than dm are listed):", *where_dm_loses(summarize(result))]
    for sanity in ("logit_mask", "identity"):
        if any(r["method"] == sanity for r in result["rows"]):
            parts += ["", f"The same targets for `{sanity}`:", *pass_counts(result, sanity)]
    return "\n".join(parts)


def main() -> None:
    profile_name = os.environ.get("BENCH_PROFILE", "full")
    if profile_name not in PROFILES:
        sys.exit(f"error: BENCH_PROFILE must be one of {sorted(PROFILES)}, got {profile_name!r}")
    profile = dict(PROFILES[profile_name])
    if "BENCH_SEEDS" in os.environ:
        profile["seeds"] = int(os.environ["BENCH_SEEDS"])
    workers = int(os.environ.get("BENCH_WORKERS", "2"))
    threads = os.environ.setdefault("FORGETFLOW_THREADS", "1")
    configs = [(sc, build_config(sc, profile)) for sc in scenarios()]  # validate all first
    OUT_DIR.mkdir(exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    old = Path("BENCHMARKS.md").read_text() if Path("BENCHMARKS.md").exists() else ""
    kept = kept_sections(old)
    sections: list[str] = []
    for sc, cfg in configs:  # one scenario after another
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                result = run_scenario(cfg, lambda fn, jobs: list(pool.map(fn, jobs)))
        else:
            result = run_scenario(cfg, serial_map)
        (OUT_DIR / f"{sc['scenario']}.json").write_text(json.dumps(result, indent=2))
        sections.append(section(sc, result))
        print(format_table(result), flush=True)
        # rewritten after every scenario: an interrupted run still leaves honest, labelled
        # partial results
        write_report(profile_name, profile, started, workers, threads, sections,
                     len(configs), kept)
    print("wrote BENCHMARKS.md", file=sys.stderr)


def write_report(profile_name: str, profile: dict, started: dt.datetime, workers: int,
                 threads: str, sections: list[str], total: int, kept: str) -> None:
    minutes = (dt.datetime.now(dt.UTC) - started).total_seconds() / 60
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    status = "" if len(sections) == total else (
        f"- **partial: {len(sections)} of {total} scenarios finished** (the run was still going "
        "or was stopped when this file was written)\n")
    text = (
        "# Benchmarks\n\n"
        f"- command: `make bench{'-quick' if profile_name == 'quick' else ''}` (profile "
        f"{profile_name}: {json.dumps(profile)})\n"
        f"- machine: {machine()}\n- date: {started:%Y-%m-%d %H:%M} UTC, commit {rev}, "
        f"{minutes:.0f} min wall-clock\n" + status +
        f"- scenarios one after another; inside a scenario {workers} worker process(es) map the "
        f"jobs, {threads} torch thread(s) each, so every method and Retrain is timed under the "
        "same load\n\n" + PREAMBLE + "\n\n" + "\n\n".join(sections) + "\n"
        + bench_extras(OUT_DIR)
    )
    Path("BENCHMARKS.md").write_text(text.rstrip("\n") + f"\n\n{KEEP_MARKER}\n\n" + kept
                                     + ("\n" if kept else ""))


if __name__ == "__main__":
    main()
