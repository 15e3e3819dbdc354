"""scripts/system-deps: what `make setup` / `make test` run to get the suite's Debian packages.
A missing package in `check` mode fails with the exact apt-get command; nothing missing is a
quiet success."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "system-deps"


def run(mode: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), mode], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


def test_missing_dataset_fails_check_with_the_exact_command(tmp_path: Path) -> None:
    out = run("check", FORGETFLOW_FASHION_MNIST=str(tmp_path / "absent"))
    assert out.returncode == 1
    assert "dataset-fashion-mnist" in out.stderr
    assert "sudo apt-get install -y dataset-fashion-mnist" in out.stderr


def test_missing_chromium_is_named(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "id", "env"):
        (bin_dir / tool).symlink_to(f"/usr/bin/{tool}")
    out = run("check", PATH=str(bin_dir))
    assert out.returncode == 1 and "apt-get install -y" in out.stderr
    assert out.stderr.rstrip().endswith("chromium")


def test_everything_present_is_silent() -> None:
    out = run("check")
    assert (out.returncode, out.stderr) == (0, ""), (
        f"this machine lacks what the suite needs: {out.stderr}")
