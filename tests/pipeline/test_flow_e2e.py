"""One batch through the real flows (Prefect test harness, MLflow on SQLite, git + DVC, the
SQL ledger), then everything read back independently of forgetflow's adapters."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import dvc.api
import mlflow
import numpy as np
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from typer.testing import CliRunner

from flows.process_deletions import process_deletions
from flows.promote import promote_flow
from flows.train import train_flow
from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.registry import TAG
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app
from forgetflow.core.data.manifest import Manifest
from forgetflow.pipeline.lineage import TAG_KEYS

NAME = "ff-test"
LOAD = """
import sys, mlflow, torch, forgetflow
mlflow.set_tracking_uri(sys.argv[1])
model = forgetflow.load_model("models:/ff-test@champion")
x = torch.rand(5, 1, 16, 16)
print(tuple(model(x).shape), type(model).__name__)
"""


def submit(args: list[str]) -> int:
    result = CliRunner().invoke(app, ["request", "submit", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["id"]


def test_batch_end_to_end(prefect_harness: None, workspace, tmp_path) -> None:
    trained = train_flow()
    assert trained["model_version"] == "1" and trained["data_version"] == "v1"

    repo = DataRepo(Workspace.from_env())
    m = repo.manifest(repo.version("v1"))
    train = m.split == "train"
    subject = str(m.subject[train & (m.labels != 3)][0])
    samples = m.ids[train & (m.labels != 3) & (m.subject != subject)][:60].tolist()
    (tmp_path / "ids.txt").write_text("\n".join(samples) + "\n")
    rid_subject = submit(["--kind", "subject", "--subject", subject])
    rid_class = submit(["--kind", "class", "--label", "3"])
    rid_samples = submit(["--kind", "samples", "--ids-file", str(tmp_path / "ids.txt")])

    batch = process_deletions()
    assert batch["gate"] == "passed", batch
    assert batch["request_ids"] == [rid_subject, rid_class, rid_samples]
    assert batch["timings"]["total"] > batch["timings"]["unlearn"] > 0
    # unlearned, not done: the champion still serves v1, trained on the rows
    ledger = Ledger(Workspace.from_env().ledger_url)
    for rid in (rid_subject, rid_class, rid_samples):
        view = ledger.get(rid)
        assert (view.status, view.receipt) == ("unlearned", None), view
    promoted = promote_flow()
    assert promoted == {"model_name": NAME, "champion": batch["model_version"],
                        "previous_champion": "1",
                        "completed_requests": [rid_subject, rid_class, rid_samples],
                        # v1 was tagged tainted when the batch ended; it lost its last alias
                        # now, and retention (0 days) deleted its weights
                        "retention": {"tainted": [], "aliases_removed": [], "purged": ["1"]}}

    # registry, read with the plain MLflow client
    uri = workspace.parent / "mlflow.db"
    client = mlflow.MlflowClient(f"sqlite:///{uri}")
    mv = client.get_model_version_by_alias(NAME, "champion")
    tags = mv.tags
    assert {TAG + k for k in TAG_KEYS} <= set(tags)
    assert tags[TAG + "kind"] == "unlearned" and tags[TAG + "parent_version"] == "1"
    assert tags[TAG + "deletion_request_ids"] == f"{rid_subject},{rid_class},{rid_samples}"
    assert tags[TAG + "data_version"] == "v2" and tags[TAG + "parent_data_version"] == "v1"
    assert tags[TAG + "method"] in ("dm", "retrain") and tags[TAG + "gate"] == "passed"
    run = client.get_run(mv.run_id)
    for key in ("forget_acc", "retain_acc", "test_acc", "mia_efficacy", "mia_loss_acc",
                "third_party_auc", "unlearn_seconds"):
        assert key in run.data.metrics
    contexts = {t.value for d in run.inputs.dataset_inputs for t in d.tags
                if t.key == "mlflow.data.context"}
    assert contexts == {"train", "forget", "retain"}
    artifacts = [a.path for a in client.list_artifacts(mv.run_id)]
    assert not any("forget" in a or a.endswith(".csv") for a in artifacts)
    assert not [a for a in client.search_registered_models()[0].aliases if a == "challenger"]

    # data registry, read with dvc.api
    with dvc.api.open("manifest.csv", repo=str(repo.path), rev="v2") as fh:
        v2 = Manifest.read_csv(fh)
    forgotten = set(samples) | set(m.ids[m.subject == subject]) | set(
        m.ids[(m.labels == 3) & (m.split != "test")])
    assert not forgotten & set(v2.ids.tolist())
    assert len(v2) == len(m) - len(forgotten)
    excluded = list(csv.reader(io.StringIO(dvc.api.read("exclusions.csv", repo=str(repo.path),
                                                         rev="v2"))))[1:]
    assert {row[0] for row in excluded} == forgotten
    assert int(tags[TAG + "forget_set_size"]) == int((train & np.isin(m.ids, sorted(
        forgotten))).sum())

    # ledger: done with receipts naming the version and the serving champion
    for rid in (rid_subject, rid_class, rid_samples):
        req = ledger.get(rid)
        assert req.status == "done" and req.model_version == str(mv.version)
        assert req.receipt["model_version"] == str(mv.version)
        assert req.receipt["data_version"] == "v2"
        assert req.receipt["serving"] == [{"alias": "champion", "model_version": str(mv.version),
                                          "model_sha256": tags[TAG + "model_sha256"],
                                          "data_version": "v2"}]
    assert ledger.batch(batch["batch_id"])["gate"] == "passed"

    # the batch's Prefect markdown artifact
    key = f"deletion-batch-{batch['batch_id'].lower()}"
    with get_client(sync_client=True) as client_:
        found = client_.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert found and "**gate: passed**" in found[0].data and found[0].type == "markdown"

    # the champion loads by URI in a fresh interpreter
    out = subprocess.run([sys.executable, "-c", LOAD, f"sqlite:///{uri}"], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[0].strip() == "(5, 10) Classifier"

    # the next batch with nothing pending is a no-op
    assert process_deletions()["request_ids"] == []
