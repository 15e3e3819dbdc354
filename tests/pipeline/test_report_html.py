"""A processed batch's figures (MLflow run, Prefect artifact) and `forgetflow report`, rendered
in headless Chromium: the screenshot is not blank, a verdict per stage in plain words, numbers a
person reads, no private data in the DOM, and the printed PDF holds every section."""

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
from forgetflow.adapters.ledger import Ledger
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
    assert cli("promote")["completed_requests"] == sorted(rids)  # done: receipts signed

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
    for needle in (f"ff-test v{version}", f"{metrics['test_acc_kept'] * 100:.1f}%",
                   tags["forgetflow.forget_set_sha256"][:12], tags["forgetflow.batch_id"],
                   "Class 3 forgotten", "Named samples and subjects forgotten",
                   "Utility kept", "Lineage back to the base model", "Pooled metrics"):
        assert needle in dom, needle
    assert len(re.findall(r"<img[^>]+data:image/png;base64", dom)) == len(FIGURES)
    # one verdict card per stage the gate judged, each with its sentence and threshold
    batch_row = Ledger.open(Workspace.from_env().ledger_url).batch(batch["batch_id"])
    checks = batch_row["decisions"][-1]["checks"]
    judged = {c["check"].split(": ", 1)[0] if ": " in c["check"] else "utility" for c in checks}
    assert len(re.findall(r'<div class="stage[ "]', dom)) == len(judged) == 3
    assert "of its rows are classified as it (at most" in dom
    visible = re.sub(r"<[^>]+>", " ", re.sub(r"<(style|summary)[^>]*>.*?</\1>|title=\"[^\"]*\"",
                                                 "", dom, flags=re.S))
    assert not re.findall(r"\d\.\d{5,}", visible), "numbers a person reads: <= 4 decimals"
    assert not re.findall(r"\b[0-9a-f]{40,}\b", visible), "digests are shortened"
    for private in (str(Workspace.from_env().root), str(tmp_path), *ids):
        assert private not in dom
    for rid in rids:
        assert re.search(rf"<td class=\"num\">{rid}</td>", dom), rid
        assert f"Full receipt of request {rid}" in dom
    assert dom.count("✓ valid") == len(rids)
    # served by: in the table and in each full receipt
    assert dom.count(f"champion v{version}") == 2 * len(rids)

    # printed to PDF for a case file: a few pages, every section heading on them
    from pypdf import PdfReader

    pdf = tmp_path / "report.pdf"
    browse(out, tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    reader = PdfReader(pdf)
    text = re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))
    headings = re.findall(r"<h2[^>]*>([^<]+)</h2>", html)
    assert len(headings) >= 7 and 3 <= len(reader.pages) <= 30, len(reader.pages)
    for heading in headings:
        assert heading in text, heading
