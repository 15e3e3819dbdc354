"""Per-batch pipeline overhead with the ledger and MLflow on SQLite files vs on PostgreSQL.

    nice -n 15 env OMP_NUM_THREADS=1 FORGETFLOW_THREADS=1 \
        .venv/bin/python scripts/stack_overhead.py --batches 4 [--json out.json]

Each backend runs in its own child process (clean globals): a temporary workspace on sklearn's
digits, one trained champion, then N batches of one 20-id samples request each through the
real `process_deletions` flow (Prefect's in-process test server, SQLite, for both, so only the
ledger/MLflow store differs). Reported: medians of the flow's own laps; `overhead` is the
batch's wall time minus unlearning compute and evaluation. PostgreSQL: 127.0.0.1:5432 as
`postgres` (FORGETFLOW_TEST_PG overrides the admin URL); its databases are dropped after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {
    "data": {"source": "digits", "root": None, "seed": 0, "third_party_fraction": 0.1,
             "subject_size": 20},
    "train": {"model": "cnn", "epochs": 4, "batch_size": 64, "lr": 0.01, "weight_decay": 0.0,
              "seed": 0},
    "registry": {"model_name": "ff-overhead"},
}
LAPS = ("total", "overhead", "ledger", "load_parent", "load_data", "data_version", "register")


def child(batches: int) -> dict:
    """Runs inside the child: train once, then `batches` one-request batches."""
    import numpy as np
    from prefect.testing.utilities import prefect_test_harness

    from flows.process_deletions import process_deletions
    from flows.train import train_flow
    from forgetflow.adapters.datarepo import DataRepo
    from forgetflow.adapters.ledger import Ledger
    from forgetflow.adapters.workspace import Workspace
    from forgetflow.core.requests import DeletionRequest

    ws = Workspace.from_env()
    rows = []
    with prefect_test_harness(server_startup_timeout=180):
        train_flow()
        rng = np.random.default_rng(0)
        for _ in range(batches):
            repo = DataRepo(ws)
            manifest = repo.manifest(repo.version())
            pool = manifest.ids[manifest.split == "train"]
            ids = rng.choice(pool, 20, replace=False).tolist()
            Ledger(ws.ledger_url).submit(DeletionRequest(kind="samples", ids=ids),
                                         PARAMS["registry"]["model_name"])
            result = process_deletions()
            rows.append({k: result["timings"].get(k, 0.0) for k in LAPS})
    return {"batches": rows, "median": {k: statistics.median(r[k] for r in rows) for k in LAPS}}


def run_backend(backend: str, batches: int) -> dict:
    import yaml

    with tempfile.TemporaryDirectory(prefix=f"ff-overhead-{backend}-") as tmp:
        params = Path(tmp) / "params.yaml"
        params.write_text(yaml.safe_dump(PARAMS))
        env = {**os.environ, "FORGETFLOW_HOME": f"{tmp}/ws", "FORGETFLOW_PARAMS": str(params),
               "PREFECT_HOME": f"{tmp}/prefect", "MLFLOW_DISABLE_TELEMETRY": "true",
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
               "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(ROOT),
               "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/ws/mlflow.db"}
        made: list[str] = []
        if backend == "postgres":
            for var in ("FORGETFLOW_DB_URL", "MLFLOW_TRACKING_URI"):
                made.append(create_database())
                env[var] = made[-1]
        try:
            proc = subprocess.run([sys.executable, __file__, "--child", str(batches)], env=env,
                                  cwd=tmp, capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"{backend} run failed:\n{proc.stderr[-4000:]}")
            return json.loads(proc.stdout.strip().splitlines()[-1])
        finally:
            for url in made:
                drop_database(url)


def admin_url() -> str:
    return os.environ.get("FORGETFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def create_database() -> str:
    import psycopg

    name = f"ffoverhead_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url().rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def drop_database(url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return
    results = {b: run_backend(b, args.batches) for b in ("sqlite", "postgres")}
    print("| backend | " + " | ".join(LAPS) + " |")
    print("|---" * (len(LAPS) + 1) + "|")
    for backend, res in results.items():
        print(f"| {backend} | " + " | ".join(f"{res['median'][k]:.2f}" for k in LAPS) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
