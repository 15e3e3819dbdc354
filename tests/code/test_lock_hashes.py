"""requirements.lock pins every package with the sha256 of its file, `make setup` installs it
in pip's hash-checking mode, and the environment the tests run in is the one it describes."""

from __future__ import annotations

import importlib.metadata as md
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)((?:\s+--hash=sha256:[0-9a-f]{64})+)$")


def requirements(text: str) -> list[str]:
    """One string per requirement: comments dropped, backslash continuations joined."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines()
                                           if not line.lstrip().startswith("#")))
    return [" ".join(r.split()) for r in joined.splitlines() if r.strip()]


def unhashed(text: str) -> list[str]:
    return [r for r in requirements(text) if not PIN.match(r)]


def test_every_pin_carries_a_sha256() -> None:
    text = (ROOT / "requirements.lock").read_text()
    assert len(requirements(text)) > 200
    assert unhashed(text) == []


def test_the_check_catches_a_pin_without_a_hash() -> None:
    good = "torch==2.14.1 \\\n    --hash=sha256:" + "a" * 64
    assert unhashed(good) == []
    assert unhashed(good + "\nnumpy==2.0.0\n") == ["numpy==2.0.0"]
    assert unhashed("x==1 --hash=sha256:abc") == ["x==1 --hash=sha256:abc"]


def test_setup_installs_in_hash_checking_mode() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q --require-hashes -r requirements.lock" in makefile


def test_the_installed_versions_are_the_pinned_ones() -> None:
    for requirement in requirements((ROOT / "requirements.lock").read_text()):
        name, version = PIN.match(requirement).group(1, 2)  # type: ignore[union-attr]
        assert md.version(name) == version, name
