"""BENCHMARKS.md's pictures and side tables: the seconds-vs-avg_gap scatter drawn from
bench-results/*.json, and the CLI latency table from bench-results/cli-latency.json."""

from __future__ import annotations

import json
from pathlib import Path

from forgetflow.report import figures

SCATTER = Path("bench-scatter.png")
SCENARIO_ORDER = ("class", "random", "subject", "backdoor")
CLI_LATENCY = "cli-latency.json"


def bench_points(results_dir: Path) -> tuple[list[dict], list[str]]:
    """One point per (scenario, method, seed) with a measured time; `original` has none."""
    points, scenarios = [], []
    for path in sorted(results_dir.glob("*.json")):
        if path.name == CLI_LATENCY:
            continue
        result = json.loads(path.read_text())
        if not isinstance(result, dict) or "rows" not in result or "config" not in result:
            continue  # not a scenario result
        cfg = result["config"]
        scenario = cfg["scenario"]
        if cfg.get("model", "cnn") != "cnn":
            scenario += f" ({cfg['model']})"
        elif not cfg.get("train_limit"):
            scenario += " (full split)"
        scenarios.append(scenario)
        points += [{"scenario": scenario, "method": r["method"], "seconds": r["seconds"],
                    "avg_gap": r["avg_gap"]} for r in result["rows"]
                   if r.get("seconds") and r.get("avg_gap") is not None]
    ranked = sorted(set(scenarios), key=lambda s: (SCENARIO_ORDER.index(s)
                                                   if s in SCENARIO_ORDER else 99, s))
    return points, ranked


def write_scatter(results_dir: Path, out: Path = SCATTER) -> Path | None:
    points, scenarios = bench_points(results_dir)
    if not points:
        return None
    fig = figures.bench_scatter_figure(points, scenarios)
    fig.suptitle("seconds (log) vs avg gap to Retrain, every method and seed")
    out.write_bytes(figures.png_bytes(fig))
    return out


def cli_latency_markdown(results_dir: Path) -> str:
    path = results_dir / CLI_LATENCY
    if not path.exists():
        return ""
    run = json.loads(path.read_text())
    lines = ["## CLI latency (ledger verbs)", "",
             f"- command: `{run['command']}`", f"- machine: {run['machine']}",
             f"- date: {run['date']}, commit {run['commit']}, load average at start "
             f"{run['load']}", f"- each command in a fresh process, {run['repeat']} runs after "
             "one warm-up; wall seconds", "",
             "| command | median s | min s | max s | exit | heavy modules imported |",
             "|---|---|---|---|---|---|"]
    lines += [f"| `{r['command']}` | {r['median_s']:.2f} | {r['min_s']:.2f} | {r['max_s']:.2f}"
              f" | {','.join(map(str, r.get('exit_codes', [0])))} | "
              f"{', '.join(r['heavy_imports']) or 'none'} |" for r in run["rows"]]
    return "\n".join(lines) + "\n"


def bench_extras(results_dir: Path) -> str:
    """What `make bench` appends to BENCHMARKS.md: the scatter (written beside it, embedded),
    the latest seconds-vs-size section (`make bench-scale`) and CLI latency table."""
    parts = []
    scatter = write_scatter(results_dir)
    if scatter is not None:
        parts.append(f"## Time vs avg_gap\n\nBottom-left is fast and close to Retrain.\n\n"
                     f"![seconds vs avg_gap per scenario]({scatter.as_posix()})\n")
    scale = scale_markdown(results_dir)
    if scale:
        parts.append(scale)
    latency = cli_latency_markdown(results_dir)
    if latency:
        parts.append(latency)
    return "\n" + "\n".join(parts) if parts else ""


SCALE_HEADING = "## Seconds vs training-set size"
SCALE_PLOT = Path("bench-scale.png")
SCALE_FILE = Path("scale/scale.json")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def scale_markdown(results_dir: Path, plot: Path = SCALE_PLOT) -> str:
    """The scaling section from bench-results/scale/scale.json (`make bench-scale`): the plot
    (written beside BENCHMARKS.md) and one table row per block and method, speed-up total
    over total against that block's Retrain."""
    path = results_dir / SCALE_FILE
    if not path.exists():
        return ""
    run = json.loads(path.read_text())
    meta, blocks = run["meta"], run["blocks"]
    series: dict[str, dict[str, list[tuple[int, float]]]] = {}
    lines = [SCALE_HEADING, "", f"- command: `{meta['command']}`", f"- machine: {meta['machine']}",
             f"- date: {meta['date']}, commit {meta['commit']}, {meta['minutes']} min "
             f"wall-clock; {meta['workers']} worker processes, {meta['threads']} torch "
             "thread(s) each; load average after "
             f"{[round(x, 2) for x in meta['load_after']]}",
             f"- methods: Retrain (training from scratch on the retained rows), dm (defaults), "
             f"{meta['baseline']} at its paper budget; seconds are each method's own wall-clock "
             "(Retrain: its training; dm and the baseline: the unlearning call); speed-up = "
             "total Retrain seconds / total method seconds over the seeds, with the smallest "
             "per-seed ratio in brackets; avg_gap to that seed's Retrain (no depth attacks "
             "here)", "", f"![seconds vs training rows]({plot.as_posix()})", "",
             "| model | train rows | scenario | forget rows | method | seeds | seconds (mean) "
             "| speed-up (min) | avg_gap | forget_acc | test_acc | asr |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, rows in blocks.items():
        model, _, scenario = key.split("-", 2)
        gold = {r["seed"]: r for r in rows if r["method"] == "retrain"}
        for method in dict.fromkeys(r["method"] for r in rows):
            mine = [r for r in rows if r["method"] == method]
            total = sum(r["seconds"] for r in mine)
            size = mine[0]["train_rows"]
            if scenario == "random":
                series.setdefault(model, {}).setdefault(method, []).append(
                    (size, total / len(mine)))
            speed = "–" if method == "retrain" else (
                f"{sum(gold[r['seed']]['seconds'] for r in mine) / total:.1f}× "
                f"({min(gold[r['seed']]['seconds'] / r['seconds'] for r in mine):.1f}×)")
            asr = [r["asr"] for r in mine if r.get("asr") is not None]
            lines.append(
                f"| {model} | {size} | {scenario} | {mine[0]['forget_rows']} | {method} | "
                f"{len(mine)} | {total / len(mine):.1f} | {speed} | "
                f"{_mean([r['avg_gap'] for r in mine]):.2f} | "
                f"{100 * _mean([r['forget_acc'] for r in mine]):.2f} | "
                f"{100 * _mean([r['test_acc'] for r in mine]):.2f} | "
                f"{f'{100 * _mean(asr):.2f}' if asr else '–'} |")
    if series:
        plot.write_bytes(figures.png_bytes(figures.scaling_figure(series)))
    return "\n".join(lines) + "\n"
