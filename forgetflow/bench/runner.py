"""Where the benchmark's independent jobs run: in this process one after another, or fanned
out through a Prefect flow whose task runner is Dask (prefect-dask) — a LocalCluster by
default, or any running `distributed` scheduler (`dask:tcp://host:8786`).

A job is a picklable zero-argument callable (a `functools.partial` of a module-level function)
that seeds everything it uses, so where it runs cannot change its result; results come back in
job order. No Prefect or Dask import happens unless a Dask runner is asked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
SCHEDULER_TIMEOUT_S = 10


class RunnerError(ValueError):
    """The --runner value is malformed, or its Dask scheduler does not answer."""


@dataclass(frozen=True)
class RunnerSpec:
    kind: str = "sequential"  # "sequential" | "dask"
    address: str | None = None  # a distributed scheduler; None = a LocalCluster

    @classmethod
    def parse(cls, text: str | None) -> RunnerSpec:
        """`sequential`, `dask` or `dask:ADDRESS` (ADDRESS like tcp://10.0.0.5:8786)."""
        text = (text or "sequential").strip()
        if text == "sequential":
            return cls()
        if text == "dask":
            return cls("dask")
        if text.startswith("dask:") and len(text) > len("dask:"):
            address = text[len("dask:"):]
            return cls("dask", address if "://" in address else f"tcp://{address}")
        raise RunnerError(f"--runner must be sequential, dask or dask:ADDRESS, got {text!r}")

    def describe(self) -> str:
        return self.kind if self.address is None else f"dask:{self.address}"


def check_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT_S) -> None:
    """Connect once, so an address that does not answer fails before any work starts."""
    from distributed import Client

    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise RunnerError(f"--runner dask:{address}: no Dask scheduler answers there "
                          f"within {timeout:.0f}s ({type(exc).__name__}: {exc})") from exc
    client.close()


def _call(job: Callable[[], Any]) -> Any:
    return job()


def _dask_task_runner(spec: RunnerSpec, jobs: int):
    from prefect_dask import DaskTaskRunner

    if spec.address:
        return DaskTaskRunner(address=spec.address)
    workers = max(1, min(jobs, len(os.sched_getaffinity(0))))
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": None})


def map_jobs(jobs: Sequence[Callable[[], T]], spec: RunnerSpec | None = None) -> list[T]:
    """Run every job and return the results in job order."""
    spec = spec or RunnerSpec()
    if spec.kind == "sequential" or not jobs:
        return [job() for job in jobs]
    if spec.address:
        check_scheduler(spec.address)
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    run_job = task(_call, name="bench-job", cache_policy=NO_CACHE)

    @flow(name="bench-jobs", task_runner=_dask_task_runner(spec, len(jobs)), log_prints=False)
    def fan_out() -> list[T]:
        futures = [run_job.submit(job) for job in jobs]
        return [future.result() for future in futures]

    return fan_out()
