"""`make bench`: run the reference scenarios and rewrite BENCHMARKS.md with the tables,
the command, the machine and the date. Targets are checked here, never in unit tests."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from forgetflow.bench.harness import BenchConfig, format_table, run_bench, summarize
from forgetflow.core.unlearn import list_unlearners

OUT_DIR = Path("bench-results")


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


def check_targets(scenario: str, summary: dict, seeds: list[dict]) -> list[str]:
    """The issue's targets for `dm`, each with the measured value and PASS/MISS."""
    dm, re, orig = summary.get("dm"), summary["retrain"], summary["original"]
    if dm is None:
        return ["dm was not run"]

    def m(stats: dict, key: str) -> float:
        return stats[key][0] if stats[key] is not None else float("nan")

    gap_target = 1.5 if scenario == "class" else 1.0
    checks: list[tuple[str, float, bool]] = [
        ("avg_gap (pt)", m(dm, "avg_gap"), m(dm, "avg_gap") <= gap_target),
        ("speedup (x)", m(dm, "speedup"), m(dm, "speedup") >= 20),
    ]
    if scenario == "class":
        checks += [
            ("forget_acc", m(dm, "forget_acc"), m(dm, "forget_acc") <= 0.01),
            ("|test_acc_remaining - Retrain| (pt)",
             100 * abs(m(dm, "test_acc_remaining") - m(re, "test_acc_remaining")),
             100 * abs(m(dm, "test_acc_remaining") - m(re, "test_acc_remaining")) <= 1.5),
        ]
    if scenario == "random":
        mia_gap = 100 * abs(m(dm, "mia_loss_acc") - m(re, "mia_loss_acc"))
        checks += [
            ("avg_gap / Original's", m(dm, "avg_gap") / m(orig, "avg_gap"),
             m(dm, "avg_gap") <= m(orig, "avg_gap") / 3),
            ("|mia_loss_acc - Retrain| (pt)", mia_gap, mia_gap <= 2.0),
        ]
    if scenario == "backdoor":
        recall = min(s["extraction_recall"] for s in seeds)
        precision = min(s["extraction_precision"] for s in seeds)
        checks += [
            ("Original ASR", m(orig, "asr"), m(orig, "asr") >= 0.90),
            ("dm ASR", m(dm, "asr"), m(dm, "asr") <= 0.03),
            ("|test_acc - Retrain| (pt)", 100 * abs(m(dm, "test_acc") - m(re, "test_acc")),
             100 * abs(m(dm, "test_acc") - m(re, "test_acc")) <= 1.0),
            ("extraction recall (min over seeds)", recall, recall >= 0.99),
            ("extraction precision (min over seeds)", precision, precision >= 0.99),
        ]
    dominated_by = [name for name, st in summary.items()
                    if name not in ("dm", "original") and st["avg_gap"] and st["seconds"]
                    and st["avg_gap"][0] < m(dm, "avg_gap") and st["seconds"][0] < m(dm, "seconds")]
    checks.append(("on the time-vs-avg_gap Pareto front (methods dominating dm: "
                   f"{', '.join(dominated_by) or 'none'})", float(len(dominated_by)),
                   not dominated_by))
    return [f"- {'PASS' if ok else 'MISS'} {name}: {value:.3f}" for name, value, ok in checks]


def run_scenario(sc: dict, seeds: int, methods: str) -> dict:
    """One scenario in its own process (so two can run side by side on two cores)."""
    cfg = BenchConfig.build(dataset="fashion-mnist", data_root=None, trigger_file=None,
                            methods=methods, epochs=None, cache_dir=Path("bench-cache"),
                            seeds=seeds, model="cnn", train_limit=None,
                            **{"forget_class": None, "fraction": 0.1, "subjects": 5,
                               "poison_rate": 0.01, **sc})
    return run_bench(cfg)


def main() -> None:
    seeds = int(os.environ.get("BENCH_SEEDS", "3"))
    default_methods = ",".join(m for m in list_unlearners() if m != "retrain")
    methods = os.environ.get("BENCH_METHODS", default_methods)
    OUT_DIR.mkdir(exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    sections = []
    workers = int(os.environ.get("BENCH_WORKERS", "2"))
    if workers > 1:  # each worker process gets an equal share of the cores
        os.environ["FORGETFLOW_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(run_scenario, sc, seeds, methods) for sc in scenarios()]
        results = [f.result() for f in futures]
    for sc, result in zip(scenarios(), results, strict=True):
        (OUT_DIR / f"{sc['scenario']}.json").write_text(json.dumps(result, indent=2))
        summary = summarize(result)
        cached = any(s["original_cached"] or s["retrain_cached"] for s in result["seeds"])
        sections.append(
            f"### {sc['scenario']} ({json.dumps(sc)})\n\n{format_table(result)}\n\n"
            f"Per-seed setup: `{json.dumps(result['seeds'])}`"
            + ("\n\nSome original/Retrain models came from the cache (their training seconds "
               "were measured when they were trained, on this machine)." if cached else "")
            + "\n\nTargets for `dm`:\n" + "\n".join(check_targets(sc["scenario"], summary,
                                                                  result["seeds"]))
        )
        print(format_table(result), flush=True)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    text = (
        "# Benchmarks\n\n"
        f"- command: `make bench` (BENCH_SEEDS={seeds}; methods: {methods})\n"
        f"- machine: {machine()}\n- date: {started:%Y-%m-%d %H:%M} UTC, commit {rev}\n"
        f"- {workers} scenario(s) run side by side, {os.environ.get('FORGETFLOW_THREADS', 'all')}"
        " torch thread(s) each; Retrain and the methods share a process, so their seconds "
        "are measured under the same load\n"
        "- data: Fashion-MNIST (Debian files), small CNN, reference recipe 12 epochs Adam "
        "one-cycle lr 3e-3 batch 128; seeds 0..N-1 (split, training and forget set all "
        "seeded)\n- metrics in %, mean ± std over seeds; `avg_gap` in points to Retrain; "
        "`speedup` = Retrain seconds / method seconds; JSON in bench-results/\n\n"
        + "\n\n".join(sections) + "\n"
    )
    Path("BENCHMARKS.md").write_text(text)
    print("wrote BENCHMARKS.md", file=sys.stderr)


if __name__ == "__main__":
    main()
