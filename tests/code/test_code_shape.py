"""Every function in the package stays readable in one screen (none over 60 lines), and the
batch flow reads as its runbook: a short file of short functions over one task per step."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 60


def long_functions(source: str, limit: int = MAX_LINES) -> list[tuple[str, int]]:
    """(name, lines) of each function or method over `limit` lines, nested ones included."""
    return [(node.name, node.end_lineno - node.lineno + 1)
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > limit]


def test_no_function_in_the_package_is_over_60_lines() -> None:
    found = {f"{path.relative_to(ROOT)}:{name}": n
             for path in sorted((ROOT / "forgetflow").rglob("*.py"))
             for name, n in long_functions(path.read_text())}
    assert not found


def test_the_check_counts_lines_of_nested_functions_too() -> None:
    body = "\n".join(f"        x{i} = {i}" for i in range(61))
    source = f"def outer():\n    def inner():\n{body}\n    return inner\n"
    assert [name for name, _ in long_functions(source)] == ["outer", "inner"]
    assert long_functions("def f():\n    return 1\n") == []


def test_the_batch_flow_reads_as_a_runbook() -> None:
    flow = ROOT / "flows" / "process_deletions.py"
    assert len(flow.read_text().splitlines()) <= 90
    for path in (flow, ROOT / "tasks" / "batch.py"):
        assert not long_functions(path.read_text(), limit=40), path.name
