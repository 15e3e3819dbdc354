"""The end-to-end pipeline on the production stack, driven the way a user's shell drives it:
`forgetflow` processes with FORGETFLOW_DB_URL and MLFLOW_TRACKING_URI on PostgreSQL
(postgresql+psycopg), PREFECT_API_URL on a Prefect server whose own database is PostgreSQL,
and S3 (a bucket the code creates) for MLflow artifacts and the DVC remote, once on moto's
server and once on SeaweedFS. Everything is then read back with the plain clients."""

from __future__ import annotations

from pathlib import Path

import mlflow
import psycopg
import pytest
import torch
from prefectserver import PrefectServer, cli_env, run_forgetflow
from s3servers import S3Server

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.registry import TAG
from forgetflow.adapters.workspace import Workspace

pytestmark = pytest.mark.slow
NAME = "ff-test"


def test_pipeline_on_postgres_and_s3(s3_server: S3Server, prefect_pg_server: PrefectServer,
                                     pg_database_factory, workspace: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = s3_server.use(monkeypatch)
    ledger_url, mlflow_url = pg_database_factory("ffledger"), pg_database_factory("ffmlflow")
    env = cli_env({"FORGETFLOW_DB_URL": ledger_url, "MLFLOW_TRACKING_URI": mlflow_url,
                   "PREFECT_API_URL": prefect_pg_server.api_url})
    assert mlflow_url.startswith("postgresql+psycopg://")

    trained = run_forgetflow(env, "train")
    assert (trained["model_version"], trained["data_version"]) == ("1", "v1")
    repo = DataRepo(Workspace.from_env())
    manifest = repo.manifest(repo.version("v1"))
    subject = str(manifest.subject[(manifest.split == "train") & (manifest.labels != 3)][0])
    rid_class = run_forgetflow(env, "request", "submit", "--kind", "class", "--label", "3")["id"]
    rid_subject = run_forgetflow(env, "request", "submit", "--kind", "subject", "--subject",
                          subject)["id"]
    batch = run_forgetflow(env, "process")
    assert batch["gate"] == "passed" and batch["request_ids"] == [rid_class, rid_subject]
    assert batch["data_version"] == "v2"
    assert run_forgetflow(env, "promote")["champion"] == batch["model_version"]

    # ledger rows live in PostgreSQL
    ledger = Ledger(ledger_url)
    for rid in (rid_class, rid_subject):
        row = ledger.get(rid)
        assert (row.status, row.model_version) == ("done", batch["model_version"])
    # the registry lives in PostgreSQL, the model's files in the bucket
    client = mlflow.MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    champion = client.get_model_version_by_alias(NAME, "champion")
    assert str(champion.version) == batch["model_version"]
    assert champion.tags[TAG + "deletion_request_ids"] == f"{rid_class},{rid_subject}"
    keys = [o["Key"] for page in s3_server.client().get_paginator("list_objects_v2").paginate(
        Bucket=bucket) for o in page.get("Contents", [])]
    run_prefix = "ws/mlflow/"
    assert any(k.startswith(run_prefix) and k.endswith("MLmodel") for k in keys)
    assert any(k.startswith("ws/dvc/files/md5/") for k in keys)
    mlflow.set_tracking_uri(mlflow_url)
    mlflow.set_registry_uri(mlflow_url)
    model = mlflow.pytorch.load_model(f"models:/{NAME}@champion", map_location="cpu")
    assert model(torch.rand(3, 1, 16, 16)).shape == (3, 10)
    # the flow runs were recorded in the Prefect server's PostgreSQL database
    with psycopg.connect(prefect_pg_server.database_url.replace("+psycopg", ""),
                         autocommit=True) as conn:
        rows = conn.execute("SELECT f.name, r.state_type FROM flow_run r JOIN flow f "
                            "ON f.id = r.flow_id").fetchall()
    completed = {name for name, state in rows if state == "COMPLETED"}
    assert {"train", "process-deletions", "promote"} <= completed, rows
