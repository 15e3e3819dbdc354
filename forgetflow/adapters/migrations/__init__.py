"""Alembic migrations of the request ledger, applied programmatically by `ledger.migrate`."""

from __future__ import annotations

import re
from pathlib import Path

VERSIONS = Path(__file__).with_name("versions")
_REVISION = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN = re.compile(r"^down_revision\s*=\s*(.+)$", re.M)


def declared_heads() -> set[str]:
    """The head revision(s) declared by the version files, read as text: answering "is this
    database current?" this way spares importing Alembic on every ledger open."""
    revisions, parents = set(), set()
    for path in VERSIONS.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revisions.update(_REVISION.findall(text))
        for down in _DOWN.findall(text):
            parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down))
    return revisions - parents
