"""A worker frozen (SIGSTOP) past its lease while another resumes its batch: thawed, it must
write nothing more and exit non-zero naming the lost lease, and the stores must still show
each request done once by one data version and one model version. Frozen at six points,
from planning to just before the close; each point runs in its own copy of one trained
workspace, concurrently, against the session's Prefect test server."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from forgetflow.core.faults import ACTION_ENV, FAULT_ENV

from . import batch_checks as bc
from .conftest import TINY_PARAMS
from .test_fault_injection import LEASE, REQUESTS, build_template

pytestmark = pytest.mark.slow
FREEZE_AT = ("planned", "data-version-recorded", "gated", "decisions-recorded",
             "registry-version-created", "artifact-published")


def stopped(pid: int) -> bool:
    """The process is in the stopped state ('T' in /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def freeze_resume_thaw(point: str, template: Path, dest: Path, api_url: str):
    env = bc.copy_workspace(template, dest, bc.batch_params(TINY_PARAMS),
                            {"PREFECT_API_URL": api_url,
                             "FORGETFLOW_BATCH_LEASE_SECONDS": str(LEASE)})
    frozen = subprocess.Popen([*bc.CLI, "process", "--json"], cwd=bc.ROOT, text=True,
                              env={**env, FAULT_ENV: point, ACTION_ENV: "stop"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not stopped(frozen.pid):
        if frozen.poll() is not None or time.monotonic() > deadline:
            frozen.kill()
            out, err = frozen.communicate()
            return env, None, f"never froze at {point} (rc {frozen.returncode}):\n{err}"
        time.sleep(0.2)
    time.sleep(LEASE + 0.5)  # the frozen worker's lease runs out
    rerun = bc.process(env)
    os.kill(frozen.pid, signal.SIGCONT)
    out, err = frozen.communicate(timeout=240)
    return env, rerun, (frozen.returncode, err)


@pytest.fixture(scope="module")
def outcomes(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from prefect.settings import PREFECT_API_URL

    api_url = str(PREFECT_API_URL.value())
    template = build_template(tmp_path_factory.mktemp("freeze-template"))
    base = tmp_path_factory.mktemp("freeze-runs")
    return bc.run_points(freeze_resume_thaw, FREEZE_AT, template, base, api_url)


@pytest.mark.parametrize("point", FREEZE_AT)
def test_a_thawed_worker_writes_nothing_after_a_takeover(point: str, outcomes: dict) -> None:
    env, rerun, frozen = outcomes[point]
    assert rerun is not None, frozen
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    code, err = frozen
    assert code != 0 and "lease lost" in err, f"rc={code}\n{err[-3000:]}"
    bc.check_exactly_once(env, REQUESTS)
