"""`make bench-cli`: wall seconds of the ledger verbs, each in a fresh process, on a small real
workspace (digits data, a 4-epoch base model, one processed batch so receipts exist).
Writes bench-results/cli-latency.json and refreshes BENCHMARKS.md's CLI latency section."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from forgetflow.report.bench_plot import CLI_LATENCY, cli_latency_markdown

OUT_DIR = Path("bench-results")
REPEAT = int(os.environ.get("BENCH_CLI_REPEAT", "7"))
HEAVY = ("torch", "mlflow", "prefect")
SECTION = "## CLI latency (ledger verbs)"
PROBE = ("import sys, json\nfrom forgetflow.cli.app import app\n"
         "try:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
         f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr)\n")


def executable() -> str:
    """The `forgetflow` entry point of this interpreter's environment."""
    return shutil.which("forgetflow", path=str(Path(sys.executable).parent)) or "forgetflow"


def forgetflow(*args: str, env: dict[str, str],
               check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([executable(), *args], capture_output=True, text=True, env=env)
    if check and proc.returncode:
        raise SystemExit(f"forgetflow {' '.join(args)} failed ({proc.returncode}):\n"
                         f"{proc.stderr[-3000:]}")
    return proc


# a small, quick recipe whose gate a digits batch passes (the bench measures the CLI, not dm)
PARAMS = {"data": {"source": "digits"}, "train": {"epochs": 4, "batch_size": 64, "lr": 0.01},
          "unlearn": {"method": "dm", "escalation": [{"method": "retrain"}]},
          "gate": {"max_third_party_auc": 0.75, "max_forget_acc_class": 0.05,
                   "max_test_acc_drop": 0.1}}


def build_workspace(env: dict[str, str]) -> dict[str, str]:
    """Data v1, a base model, one processed request and one pending: what operators have."""
    forgetflow("data", "prepare", env=env)
    forgetflow("train", env=env)
    forgetflow("request", "submit", "--kind", "class", "--label", "9", env=env)
    forgetflow("process", "--json", env=env)
    forgetflow("request", "submit", "--kind", "class", "--label", "8", env=env)
    return env


def heavy_imports(args: list[str], env: dict[str, str]) -> list[str]:
    call = [a.replace("{i}", "probe") for a in args]
    proc = subprocess.run([sys.executable, "-c", PROBE, *call], capture_output=True,
                          text=True, env=env)
    return json.loads(proc.stderr.strip().splitlines()[-1])


def measure(args: list[str], env: dict[str, str]) -> dict:
    exe = executable()
    times, codes, error = [], set(), ""
    for i in range(REPEAT + 1):
        call = [a.replace("{i}", str(i)) for a in args]
        started = time.perf_counter()
        proc = subprocess.run([exe, *call], capture_output=True, text=True, env=env)
        if i:  # the first run warms the page cache
            times.append(time.perf_counter() - started)
        codes.add(proc.returncode)
        if proc.returncode:
            error = proc.stderr.strip().splitlines()[-1:] or [""]
    return {"command": "forgetflow " + " ".join(args).replace("{i}", "N"),
            "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "runs": len(times), "exit_codes": sorted(codes), "error": error,
            "heavy_imports": heavy_imports(args, env)}


def commands(env: dict[str, str]) -> list[list[str]]:
    verbs = [["request", "submit", "--kind", "class", "--label", "7", "--idempotency-key",
              "bench-{i}", "--json"], ["request", "list", "--json"],
             ["request", "show", "1", "--json"], ["status", "--json"]]
    if forgetflow("receipt", "--help", env=env, check=False).returncode == 0:
        verbs.append(["receipt", "verify", "1", "--json"])
    return verbs


def update_benchmarks_md(markdown: str, path: Path = Path("BENCHMARKS.md"),
                         section: str = SECTION) -> None:
    """Replace (or append) one section, leaving the rest as `make bench` wrote it."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if section in text:
        head, _, tail = text.partition(section)
        rest = tail.split("\n## ", 1)
        text = head + markdown + ("\n## " + rest[1] if len(rest) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + markdown
    path.write_text(text)


def main() -> None:
    from forgetflow.bench.report import machine, short_commit

    started = dt.datetime.now(dt.UTC)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="ff-bench-cli-") as tmp:
        env = {**os.environ, "FORGETFLOW_HOME": str(Path(tmp) / "ws"),
               "PREFECT_HOME": str(Path(tmp) / "prefect"), "FORGETFLOW_PROGRESS": "off",
               "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
        params = Path(tmp) / "params.yaml"
        params.write_text(json.dumps(PARAMS))  # JSON is YAML
        env["FORGETFLOW_PARAMS"] = str(params)
        env.pop("MLFLOW_TRACKING_URI", None)
        env.pop("FORGETFLOW_DB_URL", None)
        print("building a small workspace (digits, 4 epochs, one batch)…", file=sys.stderr)
        build_workspace(env)
        rows = []
        for args in commands(env):
            rows.append(measure(args, env))
            print(f"{rows[-1]['command']}: median {rows[-1]['median_s']:.2f} s",
                  file=sys.stderr)
    rev = short_commit()
    result = {"command": "make bench-cli", "machine": machine(), "commit": rev, "load": load,
              "date": f"{started:%Y-%m-%d %H:%M} UTC", "repeat": REPEAT, "rows": rows}
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / CLI_LATENCY).write_text(json.dumps(result, indent=2) + "\n")
    update_benchmarks_md(cli_latency_markdown(OUT_DIR))
    print("wrote bench-results/cli-latency.json and BENCHMARKS.md's CLI latency section",
          file=sys.stderr)


if __name__ == "__main__":
    main()
