"""Fault injection for crash tests (test-only): FORGETFLOW_FAULT_AT=<point> makes the process
SIGKILL itself when it reaches that step boundary of a deletion batch, so a test can prove a
rerun resumes from the last durable step and repeats none. With FORGETFLOW_FAULT_ACTION=stop
it SIGSTOPs itself there instead (frozen, heartbeat included, until a SIGCONT), so a test can
prove a worker thawed after another took its batch over writes nothing. Unset in normal runs.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "FORGETFLOW_FAULT_AT"
ACTION_ENV = "FORGETFLOW_FAULT_ACTION"  # kill (default) or stop

# Every step boundary of a batch, in the order a batch reaches them (tests kill at each).
POINTS = (
    "claimed", "parent-recorded", "data-loaded", "planned", "rejected",
    "data-files-written", "data-dvc-added", "data-git-committed", "data-tagged", "data-pushed",
    "data-version-recorded", "forget-set-built", "unlearned", "gated", "decisions-recorded",
    "registry-run-logged", "registry-version-created", "model-recorded", "alias-set",
    "figures-logged", "artifact-published", "batch-finished",
)


def fault_point(name: str) -> None:
    """A step boundary: die here (SIGKILL, no cleanup), or freeze here (SIGSTOP), when the
    fault setting names it."""
    if name not in POINTS:
        raise ValueError(f"unknown fault point {name!r}")
    if os.environ.get(FAULT_ENV) == name:
        freeze = os.environ.get(ACTION_ENV, "kill") == "stop"
        os.kill(os.getpid(), signal.SIGSTOP if freeze else signal.SIGKILL)
