"""Wall-clock laps of a batch, to report the pipeline's own overhead."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Stopwatch:
    """Wall seconds per named step of a batch."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.started = time.perf_counter()

    @contextmanager
    def lap(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.laps[name] = self.laps.get(name, 0.0) + time.perf_counter() - t

    def report(self, compute: float) -> dict[str, float]:
        """Laps, total, and overhead = total minus unlearning compute and evaluation."""
        total = time.perf_counter() - self.started
        return {**self.laps, "unlearn_compute": compute, "total": total,
                "overhead": total - compute - self.laps.get("evaluate", 0.0)}
