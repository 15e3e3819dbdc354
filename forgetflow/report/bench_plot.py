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
    """What `make bench` appends to BENCHMARKS.md: the scatter (written beside it, embedded)
    and the latest CLI latency table."""
    parts = []
    scatter = write_scatter(results_dir)
    if scatter is not None:
        parts.append(f"## Time vs avg_gap\n\nBottom-left is fast and close to Retrain.\n\n"
                     f"![seconds vs avg_gap per scenario]({scatter.as_posix()})\n")
    latency = cli_latency_markdown(results_dir)
    if latency:
        parts.append(latency)
    return "\n" + "\n".join(parts) if parts else ""
