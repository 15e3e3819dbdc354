"""The lease a running batch holds: renewed by a heartbeat thread, checked at every step
boundary. A process that dies stops renewing; once the lease expires the next
`forgetflow process` resumes the batch."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from types import TracebackType

from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.ledger_batches import LeaseLost
from forgetflow.core.faults import fault_point

__all__ = ["Lease", "LeaseLost", "error_line", "owner_id"]


def owner_id() -> str:
    """Who holds a lease: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """Context manager: heartbeat every third of the lease while the batch runs."""

    def __init__(self, ledger: Ledger, batch_id: str, owner: str, seconds: float) -> None:
        self.ledger, self.batch_id, self.owner, self.seconds = ledger, batch_id, owner, seconds
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{batch_id}",
                                        daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            if not self._renew():
                self._lost.set()
                return

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def check(self) -> None:
        """The fence, asked of the database before a step's durable writes: the lease is
        still ours (and renewed), else LeaseLost. A worker frozen past its lease and thawed
        learns it here even before its heartbeat thread wakes up."""
        if not self._lost.is_set() and not self._renew():
            self._lost.set()
        self._fail_if_lost()

    def _fail_if_lost(self) -> None:
        if self._lost.is_set():
            raise LeaseLost(f"batch {self.batch_id}: lease lost (taken over, or the ledger "
                            "could not be reached to renew it)")

    def _renew(self) -> bool:
        try:
            return self.ledger.renew(self.batch_id, self.owner, self.seconds)
        except Exception:  # cannot reach the ledger: another worker may take over
            return False

    def step(self, name: str) -> None:
        """A step boundary: the lease must still be ours (as the heartbeat last saw it); the
        fault setting may kill or freeze the process here."""
        self._fail_if_lost()
        fault_point(name)


def error_line(exc: BaseException) -> str:
    """`Type: first line` of an error that ended a batch, at most 300 characters of it (the
    flow's log has the rest): a failed request's reason and `process`'s error line."""
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first}"
