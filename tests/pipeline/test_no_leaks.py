"""No leaks (issue 9 item 6): a batch runs against S3 with enforced credentials (SeaweedFS)
and a ledger URL carrying a password; then everything it wrote outside the ledger and the data
repo is scanned: MLflow (the whole tracking database: params, tags, metrics, inputs, model
versions; every artifact in the bucket), Prefect (the flow run, its task runs, logs and
artifacts; local result storage), every log line and stdout/stderr byte, and the receipts.
Also scanned: the request reasons, a batch that fails the gate (its reasons, batch row and
output) and the HTML audit report. None may hold a forgotten sample id, the forgotten subject's
id, the raw bytes of a forgotten image, or a credential."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from s3servers import S3Server
from typer.testing import CliRunner

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.dataversions import load_bundle
from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app
from forgetflow.core.data.tensors import to_float
from forgetflow.report.batch_figures import TITLES

from .batch_checks import switch_params
from .batches import processed_workspace

runner = CliRunner()
SAMPLE_ID = re.compile(rb"[A-Za-z0-9_.-]+:(?:train|test):[0-9]+")
PG_PASSWORD = "pg-Sentinel-7f3a9c"


class Records(logging.Handler):
    """Every record any logger emits while the batch runs, formatted with its arguments."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(f"{record.name} {record.getMessage()} {record.exc_text or ''}")
        except Exception:  # a record whose args do not format is still scanned raw
            self.lines.append(f"{record.name} {record.msg!r} {record.args!r}")


@pytest.fixture
def captured_logs(monkeypatch: pytest.MonkeyPatch) -> Records:
    """Every record any logger handles, whatever handlers or propagation Prefect configures
    (it reconfigures logging when a run starts, which would drop a plain handler)."""
    records = Records()
    handle = logging.Logger.handle

    def also_capture(self: logging.Logger, record: logging.LogRecord) -> None:
        records.emit(record)
        handle(self, record)

    monkeypatch.setattr(logging.Logger, "handle", also_capture)
    return records


class Finder:
    """What must not appear: forgotten ids, forgotten images' bytes, credentials."""

    def __init__(self, ids: set[str], images: np.ndarray, secrets: list[str]) -> None:
        self.ids = {i.encode() for i in ids}
        distinct = [im for im in images if len(np.unique(im)) >= 16]  # no near-blank patterns
        self.images = [im.tobytes() for im in distinct] + [
            to_float(torch.from_numpy(im)).numpy().tobytes() for im in distinct]
        self.secrets = [s.encode() for s in secrets]

    def leaks(self, blob: bytes) -> list[str]:
        found = [f"sample id {m.decode()}" for m in set(SAMPLE_ID.findall(blob)) & self.ids]
        found += ["raw forget-set image bytes" for im in self.images if im in blob][:1]
        found += [f"credential {s[:4].decode()}…" for s in self.secrets if s in blob]
        return found


def prefect_records(flow_run_id: Any) -> dict[str, bytes]:
    """The batch's flow run, task runs, logs and artifacts as the Prefect API returns them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        by_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        tasks = client.read_task_runs(flow_run_filter=by_run)
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(
            any_=[flow_run_id])))
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    assert tasks and logs and artifacts, "the scan must see the batch's Prefect records"
    return {"prefect flow run": run.model_dump_json().encode(),
            "prefect task runs": b"\n".join(t.model_dump_json().encode() for t in tasks),
            "prefect logs": b"\n".join(entry.model_dump_json().encode() for entry in logs),
            "prefect artifacts": b"\n".join(a.model_dump_json().encode() for a in artifacts)}


def bucket_objects(server: S3Server, bucket: str) -> dict[str, bytes]:
    client = server.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return {f"s3 {k}": client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys
            if "/dvc/" not in k}  # the data repo's remote holds the exclusion manifest


@pytest.mark.slow
def test_a_batch_writes_no_forgotten_data_and_no_credential(
        seaweed_s3: S3Server, pg_database_factory, prefect_harness: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, captured_logs: Records,
        capfd: pytest.CaptureFixture[str]) -> None:
    bucket = seaweed_s3.use(monkeypatch)
    ledger_url = pg_database_factory().replace("postgres@", f"postgres:{PG_PASSWORD}@", 1)
    done = processed_workspace(tmp_path / "leaks", {"FORGETFLOW_DB_URL": ledger_url})
    out, err = capfd.readouterr()
    assert captured_logs.lines, "the scan must see the batch's log records"
    for key, value in done["env"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FORGETFLOW_DB_URL", ledger_url)

    ws = Workspace.from_env()
    repo = DataRepo(ws)
    v1, v2 = repo.version("v1"), repo.version("v2")
    before, after = repo.manifest(v1), repo.manifest(v2)
    forgotten = (set(before.ids[before.split == "train"].tolist())
                 - set(after.ids[after.split == "train"].tolist()))
    assert len(forgotten) >= 40 and set(done["samples"]) <= forgotten
    bundle, _ = load_bundle(repo, v1)
    rows = np.flatnonzero(np.isin(bundle.train.ids.astype(str), sorted(forgotten)))
    finder = Finder(forgotten, bundle.train.images[rows].numpy(),
                    [seaweed_s3.secret_key, PG_PASSWORD, done["subject"]])
    failed_reasons = _a_failed_batch(tmp_path, monkeypatch)
    report = tmp_path / "report.html"
    assert runner.invoke(app, ["report", "champion", "--out", str(report)]).exit_code == 0

    # the scan works: it finds what is planted, and the ledger/exclusions legitimately hold ids
    planted = (b'{"x": "' + sorted(forgotten)[0].encode() + b'"}' + finder.images[0]
               + done["subject"].encode())
    assert len(finder.leaks(planted)) == 3
    assert finder.leaks(repo.read_bytes("exclusions.csv", v2))

    ledger = Ledger.open(ws.ledger_url)
    batch_id = done["batch"]["batch_id"]
    sources: dict[str, bytes] = {
        "mlflow tracking database": Path(ws.mlflow_tracking_uri.removeprefix("sqlite:///"))
        .read_bytes(),
        **bucket_objects(seaweed_s3, bucket),
        "log records": "\n".join(captured_logs.lines).encode(),
        "stdout": out.encode(), "stderr": err.encode(),
        "receipts": str([ledger.get(r).receipt for r in done["requests"]]).encode(),
        "request reasons": str([v.reason for v in ledger.list()]).encode(),
        "a failed batch's reasons and error": failed_reasons,
        "the HTML audit report": report.read_bytes(),
        **prefect_records(_batch_flow_run_id(batch_id)),
        **{f"workspace {p}": p.read_bytes() for p in _workspace_files(ws)},
        **{f"prefect result {p}": p.read_bytes() for p in _result_files()},
    }
    assert any(k.endswith("forgetflow/model.safetensors") for k in sources)  # artifacts seen
    leaks = {name: found for name, blob in sources.items() if (found := finder.leaks(blob))}
    assert not leaks, leaks
    pngs = {Path(k).stem for k in sources if k.endswith(".png")}
    assert pngs and pngs <= set(TITLES), pngs  # only the known aggregate figures are images


def _a_failed_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """A failure path: a class request unlearned by doing nothing fails the gate; what it
    wrote (request reasons, the batch row) is returned for the scan."""
    import json

    switch_params(tmp_path / "failing.yaml", monkeypatch,
                  unlearn={"method": "identity", "config": {}, "escalation": []})
    rid = json.loads(runner.invoke(app, ["request", "submit", "--kind", "class", "--label",
                                         "2", "--json"]).stdout)["id"]
    result = runner.invoke(app, ["process", "--json"])
    assert result.exit_code == 1, result.output
    ledger = Ledger.open(Workspace.from_env().ledger_url)
    view = ledger.get(rid)
    assert view.status == "failed" and view.reason
    return (result.output + str(view.reason) + str(ledger.batch(view.batch_id))).encode()


def _result_files() -> list[Path]:
    """Prefect's local result storage (tasks here persist nothing; scanned to prove it)."""
    from prefect.settings import get_current_settings

    root = Path(get_current_settings().results.local_storage_path).expanduser()
    return [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []


def _batch_flow_run_id(batch_id: str) -> Any:
    """The process-deletions run whose markdown artifact is this batch's report."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[f"deletion-batch-{batch_id.lower()}"])))
    assert found, f"no Prefect artifact for batch {batch_id}"
    return found[0].flow_run_id


def _workspace_files(ws: Workspace) -> list[Path]:
    """Everything in the workspace except the data repo (and its DVC cache/remote), the
    ledger and the MLflow database (scanned above)."""
    skip = {ws.data_repo, ws.root / "dvc-remote"}
    return [p for p in ws.root.rglob("*") if p.is_file() and not any(s in p.parents
                                                                      for s in skip)
            and p.name not in ("ledger.db", "mlflow.db")]
