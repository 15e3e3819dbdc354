"""Settings that point nowhere are one-line errors naming the setting, exit 2, and create
nothing: a params path that is a folder, a ledger URL that is not a URL, a SQLite ledger in a
folder that does not exist (which used to be created, showing an empty queue)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from forgetflow.cli.app import app

runner = CliRunner()


@pytest.mark.parametrize("variable, value, message", [
    ("FORGETFLOW_PARAMS", "{tmp}", "is not a file"),
    ("FORGETFLOW_DB_URL", "notaurl", "FORGETFLOW_DB_URL is not a usable database URL"),
    ("FORGETFLOW_DB_URL", "sqlite:///{tmp}/typo/ledger.db", "FORGETFLOW_DB_URL: the folder"),
])
@pytest.mark.parametrize("command", [["status"], ["request", "list"]])
def test_a_setting_that_points_nowhere_is_one_error_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str,
        message: str, command: list[str]) -> None:
    monkeypatch.setenv(variable, value.format(tmp=tmp_path))
    result = runner.invoke(app, [*command, "--json"])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == "" and not (tmp_path / "typo").exists()
