"""A real Prefect server backed by PostgreSQL (`prefect server start` on a free loopback port,
PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://… on a fresh test database), and the
environment a user's shell would export to run forgetflow on the production stack."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from s3servers import free_ports, stop_process

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    database_url: str  # SQLAlchemy URL of its PostgreSQL database (psycopg driver)


def cli_env(extra: dict[str, str]) -> dict[str, str]:
    """os.environ plus `extra`, with this checkout first on the import path."""
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def forgetflow_bin() -> str:
    return str(Path(sys.executable).parent / "forgetflow")


def run_forgetflow(env: dict[str, str], *args: str) -> dict:
    """`forgetflow ARGS --json` in a child process, as a user's shell runs it."""
    import json

    proc = subprocess.run([forgetflow_bin(), *args, "--json"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


def run_prefect(env: dict[str, str], *args: str) -> str:
    """The `prefect` CLI from the repository root (where prefect.yaml files resolve)."""
    proc = subprocess.run([str(Path(sys.executable).parent / "prefect"), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="session")
def prefect_pg_server(pg_database_factory,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    database = pg_database_factory("ffprefect")
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_ports(1)[0]
    env = cli_env({
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": database.replace("+psycopg", "+asyncpg", 1),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port),
    })
    env.pop("PREFECT_API_URL", None)
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start",
                                 "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prefect server exited: {log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server did not answer at {api}: {log.read_text()[-3000:]}")
            time.sleep(1)
        yield PrefectServer(api, database)
    finally:
        stop_process(proc, timeout=30)
