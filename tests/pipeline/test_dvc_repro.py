"""`dvc repro` of the root dvc.yaml reproduces prepare → train → evaluate; metrics and plots
are declared. Runs in a scratch git repo with the project's dvc.yaml and a tiny params file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from imagefolders import write_folder

ROOT = Path(__file__).resolve().parents[2]
DVC = str(Path(sys.executable).with_name("dvc"))


def run(cwd: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": str(cwd)}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def project(tmp_path: Path, params_file: Path, source: str = "digits") -> Path:
    """A scratch git+DVC repo with the project's code, dvc.yaml and the tiny test params."""
    work = tmp_path / "project"
    work.mkdir()
    shutil.copytree(ROOT / "forgetflow", work / "forgetflow",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", work / "dvc.yaml")
    # the tiny test params over the project's own: every key dvc.yaml lists must exist
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in yaml.safe_load(params_file.read_text()).items():
        params[section] = {**params.get(section, {}), **values} if isinstance(values, dict) \
            else values
    params["train"]["epochs"] = 1
    if source == "folder":  # users' images: any name, format, mode and size
        images = write_folder(tmp_path / "my images, ñ", per_class=30, test_per_class=10)
        params["data"].update(source=f"folder:{images}", image_size=16)
        params["train"]["epochs"] = 6
    (work / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    run(work, "git", "init", "-q")
    run(work, DVC, "init", "-q")
    run(work, DVC, "config", "core.analytics", "false")
    return work


@pytest.mark.parametrize("source", ["digits", "folder"])
def test_dvc_repro_builds_base_model(tmp_path: Path, params_file: Path, source: str) -> None:
    work = project(tmp_path, params_file, source)
    run(work, DVC, "repro")
    metrics = json.loads(run(work, DVC, "metrics", "show", "--json"))
    values = metrics[""]["data"]
    assert values["build/metrics.json"]["data"]["test_acc"] > 0.3
    assert "train_loss" in values["build/train.json"]["data"]
    plots = run(work, DVC, "plots", "show", "--json", "-o", str(tmp_path / "plots"))
    assert "confusion.csv" in plots and "per_class.csv" in plots
    assert "Stage 'train' didn't change" in run(work, DVC, "repro")


def test_dvc_repro_leaves_out_the_workspaces_forgotten_rows(tmp_path: Path,
                                                            params_file: Path) -> None:
    """Rows a deletion batch removed (the workspace's exclusion manifest) never reach a
    reproduced base model; a new exclusion makes train run again."""
    from forgetflow.adapters.datarepo import DataRepo
    from forgetflow.adapters.dataversions import drop_version, prepare
    from forgetflow.adapters.workspace import Workspace
    from forgetflow.core.data.manifest import Manifest
    from forgetflow.core.params import DataParams

    work = project(tmp_path, params_file)
    data = DataParams(**yaml.safe_load((work / "params.yaml").read_text())["data"])
    repo = DataRepo(Workspace.from_env())
    head, _ = prepare(repo, data)
    train_ids = repo.manifest(head).ids[repo.manifest(head).split == "train"]
    head = drop_version(repo, head, train_ids[:7], {}, "b-one", [1])
    first = run(work, DVC, "repro")
    assert "7 row(s) left out" in first and f"data {head.tag}" in first
    built = Manifest.read_csv(work / "build/manifest.csv")
    assert not set(train_ids[:7].tolist()) & set(built.ids.tolist())
    assert set(built.ids.tolist()) == set(repo.manifest(head).ids.tolist())
    assert "Stage 'train' didn't change" in run(work, DVC, "repro")
    drop_version(repo, head, train_ids[7:9], {}, "b-two", [2])
    again = run(work, DVC, "repro")
    assert "9 row(s) left out" in again and "Running stage 'train'" in again
