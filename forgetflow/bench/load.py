"""Load check: N pending mixed requests (samples, subject, class) through `process_deletions`
in bounded batches, timed, with the process's peak memory. Run it as a script:

    python -m forgetflow.bench.load --requests 1000 --max-requests 250 --out load.json

It builds a throwaway workspace (data v1 + a base model trained for `--epochs`), submits the
requests straight into the ledger, then runs one `process` flow. The unlearning step is
cheap and the gate wide open on purpose: this measures the pipeline's handling of many
requests (claiming, planning, data versions, registration, closing), not forgetting quality.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml


def mixed_requests(manifest: Any, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """~70% samples requests (1-5 ids), ~30% subject requests, and two class requests; every
    request names rows no other request names, so each can be honoured."""
    rng = np.random.default_rng(seed)
    train = manifest.split == "train"
    classes = sorted(set(manifest.labels[train].tolist()))[-2:]
    keep = train & ~np.isin(manifest.labels, classes)
    subjects = sorted(set(manifest.subject[keep].tolist()))
    n_subject = min(int(0.3 * n), len(subjects) // 2)
    chosen = set(rng.choice(subjects, n_subject, replace=False).tolist())
    pool = manifest.ids[keep & ~np.isin(manifest.subject, sorted(chosen))]
    rng.shuffle(pool)
    out: list[dict[str, Any]] = [{"kind": "class", "label": int(k)} for k in classes]
    out += [{"kind": "subject", "subject": s} for s in sorted(chosen)]
    at = 0
    while len(out) < n:
        size = int(rng.integers(1, 6))
        out.append({"kind": "samples", "ids": pool[at:at + size].tolist()})
        at += size
    rng.shuffle(out)
    return out[:n]


def params(max_requests: int, epochs: int) -> dict[str, Any]:
    return {"data": {"source": "fashion-mnist"},
            "train": {"epochs": epochs, "batch_size": 256},
            "unlearn": {"method": "dm", "config": {"max_steps": 40, "min_steps": 5},
                        "escalation": []},
            "gate": {"max_third_party_auc": 1.0, "max_forget_acc_class": 1.0, "max_asr": 1.0,
                     "max_test_acc_drop": 1.0, "depth": {"enabled": False}},
            "evaluation": {"retain_cap": 5000},
            "batch": {"max_requests": max_requests},
            "registry": {"model_name": "ff-load"}}


def run(n: int, max_requests: int, epochs: int, home: Path) -> dict[str, Any]:
    from flows.process_deletions import process_deletions
    from flows.train import train_flow
    from forgetflow.adapters.datarepo import DataRepo
    from forgetflow.adapters.ledger import Ledger
    from forgetflow.adapters.workspace import Workspace
    from forgetflow.core.requests import DeletionRequest

    params_file = home / "params.yaml"
    params_file.write_text(yaml.safe_dump(params(max_requests, epochs)))
    started = time.perf_counter()
    train_flow(str(params_file))
    trained = time.perf_counter()
    ws = Workspace.from_env()
    repo = DataRepo(ws)
    head = repo.version()
    ledger = Ledger.open(ws.ledger_url)
    for raw in mixed_requests(repo.manifest(head), n):
        ledger.submit(DeletionRequest.model_validate(raw), "ff-load")
    submitted = time.perf_counter()
    result = process_deletions("ff-load", str(params_file))
    processed = time.perf_counter()
    batches = ledger.batches("ff-load")
    statuses = [r.status for r in ledger.list(model_name="ff-load")]
    return {
        "requests": n, "max_requests": max_requests, "batches": len(batches),
        "batch_sizes": [len(b["request_ids"]) for b in batches],
        "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
        "seconds": {"train_base": round(trained - started, 1),
                    "submit": round(submitted - trained, 1),
                    "process": round(processed - submitted, 1),
                    "per_batch": [round(b["metrics"].get("seconds.total", 0.0), 1)
                                  for b in batches]},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "last_batch": {k: result.get(k) for k in ("batch_id", "model_version", "data_version",
                                                  "gate")},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU, torch threads "
                   f"{os.environ.get('FORGETFLOW_THREADS', '?')}, {platform.python_version()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--max-requests", type=int, default=250)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="forgetflow-load-") as tmp:
        home = Path(tmp)
        os.environ.update({"FORGETFLOW_HOME": str(home / "ws"), "PREFECT_HOME": str(home / "p"),
                           "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"})
        os.environ.pop("FORGETFLOW_DB_URL", None)
        report = run(args.requests, args.max_requests, args.epochs, home)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    sys.exit(0 if report["statuses"].get("done") == args.requests else 1)


if __name__ == "__main__":
    main()
