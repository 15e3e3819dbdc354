"""A workspace keeps its data source: `data prepare` or `train` with params that name another
source (run from the wrong directory, or with no params.yaml at all: the defaults) is refused
before anything is written, and `data prepare --allow-source-change` is the way to move on
(the images moved)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from imagefolders import write_folder
from typer.testing import CliRunner

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app

runner = CliRunner()


def test_another_source_is_refused_until_allowed(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    first = runner.invoke(app, ["data", "prepare", "--json"])  # params: digits
    assert first.exit_code == 0, first.output
    repo = DataRepo(Workspace.from_env())
    before = (repo.tags(), repo.version().rev)
    folder = f"folder:{write_folder(tmp_path / 'images', per_class=20, test_per_class=4)}"
    for args in (["data", "prepare", "--source", folder], ["train", "--source", folder]):
        refused = runner.invoke(app, [*args, "--json"])
        assert refused.exit_code == 2, refused.output
        assert "was built from 'digits'" in refused.stderr and folder in refused.stderr
        assert "--allow-source-change" in refused.stderr and refused.stdout == ""
        assert (repo.tags(), repo.version().rev) == before
    # no params file at all: the defaults (fashion-mnist) are refused the same way
    monkeypatch.delenv("FORGETFLOW_PARAMS")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    defaults = runner.invoke(app, ["data", "prepare", "--json"])
    assert defaults.exit_code == 2 and "'fashion-mnist'" in defaults.stderr
    moved = runner.invoke(app, ["data", "prepare", "--source", folder, "--allow-source-change",
                                "--json"])
    assert moved.exit_code == 0, moved.output
    assert json.loads(moved.stdout)["created"] and repo.tags() == [*before[0], "v2"]
