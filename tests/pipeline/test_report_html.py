"""A processed batch's figures (MLflow run, Prefect artifact) and `forgetflow report`, rendered
in headless Chromium: the screenshot is not blank and the key numbers are in the DOM."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest
from PIL import Image
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from typer.testing import CliRunner

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app

runner = CliRunner()
FIGURES = {"confidence_ecdf.png", "loss_ecdf.png", "mia_roc.png", "class_accuracy.png",
           "depth_checks.png"}


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("headless Chromium is required to render the report: `apt-get install "
                    "chromium` (what `make setup` does as root)", pytrace=False)
    return found


def browse(html: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
           f"--user-data-dir={tmp / 'chromium-profile'}", *args, html.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True)


def cli(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_batch_figures_and_report_in_a_browser(prefect_harness: None, trained: dict,
                                               tmp_path: Path) -> None:
    repo = DataRepo(Workspace.from_env())
    m = repo.manifest(repo.version())
    ids = m.ids[(m.split == "train") & (m.labels != 3)][:60].tolist()
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    rids = [cli("request", "submit", "--kind", "class", "--label", "3")["id"],
            cli("request", "submit", "--kind", "samples", "--ids-file",
                str(tmp_path / "ids.txt"))["id"]]
    batch = cli("process")
    version = batch["model_version"]

    client = mlflow.MlflowClient(Workspace.from_env().mlflow_tracking_uri)
    mv = client.get_model_version("ff-test", version)
    logged = {Path(a.path).name for a in client.list_artifacts(mv.run_id, "figures")}
    assert logged == FIGURES
    key = f"deletion-batch-{batch['batch_id'].lower()}"
    with get_client(sync_client=True) as prefect:
        artifact = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))[0]
    assert "## Figures" in artifact.data
    assert all(f"figures/{name}" in artifact.data for name in FIGURES)

    out = tmp_path / "report.html"
    made = cli("report", version, "--out", str(out))
    assert made["figures"] == len(FIGURES) and made["bytes"] == out.stat().st_size
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html and "href=" not in html and "<link" not in html
    assert set(re.findall(r'src="([a-z]+):', html)) == {"data"}  # every image inline
    assert not any(i in html for i in ids), "forget-set ids must not appear in the report"

    shot = tmp_path / "shot.png"
    browse(out, tmp_path, f"--screenshot={shot}", "--window-size=1200,2400")
    pixels = np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("L"), float)
    assert pixels.std() > 20, "the rendered report looks blank"
    dom = browse(out, tmp_path, "--dump-dom").stdout
    metrics = client.get_run(mv.run_id).data.metrics
    tags = mv.tags
    for needle in (f"ff-test v{version}", f"{metrics['test_acc']:.4f}",
                   f"{metrics['forget_acc']:.4f}", tags["forgetflow.forget_set_sha256"][:16],
                   tags["forgetflow.batch_id"], "class-3: forget_acc", "test_acc_drop",
                   "max_test_acc_drop", "Lineage back to the base model", "v1", "v2"):
        assert needle in dom, needle
    assert len(re.findall(r"<img[^>]+data:image/png;base64", dom)) == len(FIGURES)
    for rid in rids:
        assert re.search(rf"<td class=\"num\">{rid}</td>", dom), rid
