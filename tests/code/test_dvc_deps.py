"""dvc.yaml lists every forgetflow code file each stage can run (its import closure, lazy
imports included), so `dvc repro` reruns a stage whenever code it runs changes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported(path: Path) -> set[str]:
    """forgetflow modules a file imports anywhere (module level or inside functions), except
    in a PEP 562 module `__getattr__`, which runs only when that attribute is asked for."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            tree.body.remove(node)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n.split(".")[0] == "forgetflow"}


def closure(start: str) -> set[Path]:
    seen: set[Path] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # a package's __init__ runs too
            path = module_file(".".join(parts[:i]))
            if path is not None and path not in seen:
                seen.add(path)
                todo += sorted(imported(path))
    return seen


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_lists_every_code_file_it_runs(stage: str) -> None:
    spec = STAGES[stage]
    module = spec["cmd"].split("python -m ", 1)[1].split()[0]
    deps = [ROOT / d for d in spec["deps"]]
    missing = sorted(str(p.relative_to(ROOT)) for p in closure(module)
                     if not any(p == d or d in p.parents for d in deps))
    assert not missing, f"dvc.yaml stage {stage!r} runs these files but does not list them"
