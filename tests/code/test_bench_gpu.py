"""`make bench-gpu` must refuse clearly (exit 2, nothing written) where no CUDA device is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_bench_gpu_fails_clearly_without_cuda(tmp_path: Path):
    (tmp_path / "BENCHMARKS.md").write_text("# Benchmarks\n")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-m", "forgetflow.bench.gpu"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "no CUDA device" in done.stderr and done.stdout == ""
    assert (tmp_path / "BENCHMARKS.md").read_text() == "# Benchmarks\n"
