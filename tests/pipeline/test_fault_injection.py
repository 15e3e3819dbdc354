"""Crash at every step boundary of a deletion batch: a real `forgetflow process` is SIGKILLed
there (FORGETFLOW_FAULT_AT), a second one resumes the batch once the lease has expired, and
the ledger, the registry and the data repo must show each request done exactly once by one
data version and one model version.

One trained workspace is built per module and copied per point; Prefect runs on the session's
test server, so each subprocess pays only for its imports and its batch. The points run
concurrently (FORGETFLOW_TEST_WORKERS, default: the CPU count), each in its own copy."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from forgetflow.core.faults import FAULT_ENV, POINTS

from .batch_checks import (
    ROOT,
    batch_params,
    check_exactly_once,
    copy_workspace,
    process,
    run_points,
)
from .batches import trained_with_requests
from .conftest import TINY_PARAMS

if TYPE_CHECKING:
    from forgetflow.core.data.manifest import Manifest

LEASE = 3.0
REQUESTS = [1, 2, 3]


def build_template(root: Path) -> Path:
    """Data v1 + champion v1 and three pending requests (subject, class, samples)."""
    from forgetflow.core.requests import DeletionRequest

    def choose(m: Manifest) -> list[DeletionRequest]:
        train = m.split == "train"
        subject = str(m.subject[train & (m.labels != 3)][0])
        ids = m.ids[train & (m.labels != 3) & (m.subject != subject)][:12].tolist()
        return [DeletionRequest(kind="subject", subject=subject),
                DeletionRequest(kind="class", label=3),
                DeletionRequest(kind="samples", ids=ids)]

    with trained_with_requests(root, choose, epochs=2) as (_, requests):
        assert requests == REQUESTS
    return root


def kill_and_resume(point: str, template: Path, dest: Path, api_url: str
                    ) -> tuple[dict[str, str], subprocess.CompletedProcess[str],
                               subprocess.CompletedProcess[str]]:
    env = copy_workspace(template, dest, batch_params(TINY_PARAMS),
                         {"PREFECT_API_URL": api_url,
                          "FORGETFLOW_BATCH_LEASE_SECONDS": str(LEASE)})
    started = time.perf_counter()
    killed = process(env, **{FAULT_ENV: point})
    killed_s = time.perf_counter() - started
    time.sleep(LEASE + 0.5)  # the dead process's lease expires
    rerun = process(env)
    (dest / "timing.txt").write_text(f"{killed_s:.1f} {time.perf_counter() - started:.1f}\n")
    (dest / "rerun.err").write_text(rerun.stderr)
    return env, killed, rerun


@pytest.fixture(scope="module")
def outcomes(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory,
             request: pytest.FixtureRequest) -> dict:
    """Every selected point killed and resumed, concurrently, each in a private copy."""
    from prefect.settings import PREFECT_API_URL

    selected = [item.callspec.params["point"] for item in request.session.items
                if getattr(item, "callspec", None) and "point" in item.callspec.params
                and item.module is request.module]  # other modules have "point"s too
    api_url = str(PREFECT_API_URL.value())
    template = build_template(tmp_path_factory.mktemp("fault-template"))
    base = tmp_path_factory.mktemp("fault-runs")
    return run_points(kill_and_resume, selected, template, base, api_url)


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_killed_batch_resumes_exactly_once(point: str, outcomes: dict) -> None:
    env, killed, rerun = outcomes[point]
    assert killed.returncode == -signal.SIGKILL, (
        f"the batch never reached {point!r}: rc={killed.returncode}\n{killed.stderr[-3000:]}")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    check_exactly_once(env, REQUESTS)


def test_fault_points_are_the_marked_step_boundaries() -> None:
    """POINTS lists exactly the boundaries the code marks (none stale, none missing)."""
    sources = "".join(p.read_text() for p in [
        *(ROOT / "flows").glob("*.py"), *(ROOT / "tasks").glob("*.py"),
        *(ROOT / "forgetflow").rglob("*.py")])
    marked = set(re.findall(r'(?:lease\.step|fault_point)\("([a-z-]+)"\)', sources))
    assert marked == set(POINTS) and len(POINTS) >= 20
