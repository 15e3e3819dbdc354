"""Several workers on one work pool: two `prefect worker start` processes poll one pool of a
Prefect server on PostgreSQL; deployment runs of the batch flow (prefect.yaml's shape:
concurrency limit 1) are each picked up by exactly one worker and run once, and every request
lands in exactly one batch of the PostgreSQL ledger."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import PrefectClient
from prefectserver import ROOT, PrefectServer, cli_env, run_forgetflow, run_prefect

from forgetflow.adapters.ledger import Ledger
from forgetflow.core.requests import DeletionRequest

pytestmark = pytest.mark.slow
POOL = "ff-workers"
DEPLOY = f"""
from flows.process_deletions import process_deletions
process_deletions.from_source(source={str(ROOT)!r},
    entrypoint="flows/process_deletions.py:process_deletions").deploy(
    name="batches", work_pool_name={POOL!r}, concurrency_limit=1)
"""
TIMEOUT_S = 600


def wait_for(check, what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(2)


async def create_run(api: str) -> str:
    async with PrefectClient(api=api) as client:
        deployment = await client.read_deployment_by_name("process-deletions/batches")
        run = await client.create_flow_run_from_deployment(deployment.id)
        return str(run.id)


async def read_runs(api: str, ids: list[str]) -> list:
    async with PrefectClient(api=api) as client:
        return [await client.read_flow_run(i) for i in ids]


def test_two_workers_process_each_batch_once(prefect_pg_server: PrefectServer,
                                             pg_database_factory, workspace: Path) -> None:
    api = prefect_pg_server.api_url
    ledger_url = pg_database_factory("ffledger")
    env = cli_env({"FORGETFLOW_DB_URL": ledger_url, "PREFECT_API_URL": api,
                   "MLFLOW_TRACKING_URI": pg_database_factory("ffmlflow")})
    run_forgetflow(env, "train")
    run_prefect(env, "work-pool", "create", POOL, "--type", "process")
    subprocess.run([sys.executable, "-c", DEPLOY], env=env, cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    logs = {name: workspace.parent / f"{name}.log" for name in ("w1", "w2")}
    workers = []
    for name, log in logs.items():
        with log.open("wb") as out:
            workers.append(subprocess.Popen(
                [str(Path(sys.executable).parent / "prefect"), "worker", "start", "--pool",
                 POOL, "--name", name, "--limit", "1"], env=env, cwd=ROOT, stdout=out,
                stderr=subprocess.STDOUT))
    ledger = Ledger(ledger_url)
    try:
        first, _ = ledger.submit(DeletionRequest(kind="class", label=3), "ff-test")
        runs = [asyncio.run(create_run(api))]
        wait_for(lambda: ledger.get(first.id).status != "pending", "the first batch's claim")
        second, _ = ledger.submit(DeletionRequest(kind="class", label=5), "ff-test")
        runs.append(asyncio.run(create_run(api)))  # queued behind the first: limit 1
        wait_for(lambda: all(r.state.is_final() for r in asyncio.run(read_runs(api, runs))),
                 "both flow runs to finish")
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    finished = asyncio.run(read_runs(api, runs))
    assert [r.state.type.value for r in finished] == ["COMPLETED", "COMPLETED"], finished
    assert [r.run_count for r in finished] == [1, 1]
    texts = {name: log.read_text() for name, log in logs.items()}
    for run_id in runs:  # workers may race for a run (the server aborts all but one, and
        # re-queues one waiting for the slot): only the executing worker's child logs the run
        ran = [name for name, text in texts.items() if f"/flow-run/{run_id}" in text]
        assert len(ran) == 1, (run_id, texts)
    one, two = ledger.get(first.id), ledger.get(second.id)
    assert one.batch_id and two.batch_id and one.batch_id != two.batch_id
    assert one.status in ("unlearned", "failed") and two.status in ("unlearned", "failed")
    assert ledger.batch(one.batch_id)["request_ids"] == [first.id]
    assert ledger.batch(two.batch_id)["request_ids"] == [second.id]
