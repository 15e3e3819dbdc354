"""Two `forgetflow process` processes started at once against one ledger (PostgreSQL, and the
SQLite default) never claim the same request, and a request submitted while a batch runs is
not added to it: it waits for the next batch."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import mlflow
import pytest

from .batch_checks import CLI, ROOT, batch_params, copy_workspace
from .conftest import TINY_PARAMS, build_trained_workspace

NAME = "ff-test"


def submit_initial(ledger_url: str, env: dict[str, str]) -> tuple[list[int], str]:
    from forgetflow.adapters.datarepo import DataRepo
    from forgetflow.adapters.ledger import Ledger
    from forgetflow.adapters.workspace import Workspace
    from forgetflow.core.requests import DeletionRequest

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FORGETFLOW_HOME", env["FORGETFLOW_HOME"])
        repo = DataRepo(Workspace.from_env())
        m = repo.manifest(repo.version())
    train = m.split == "train"
    subjects = sorted(set(m.subject[train & (m.labels != 3)].tolist()))
    ledger = Ledger(ledger_url)
    ids = [ledger.submit(DeletionRequest(kind="subject", subject=s), NAME)[0].id
           for s in subjects[:2]]
    ids.append(ledger.submit(DeletionRequest(kind="class", label=3), NAME)[0].id)
    return ids, subjects[2]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_two_processes_never_claim_the_same_request(backend: str, prefect_harness: None,
                                                    pg_database_factory, tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    from forgetflow.adapters.ledger import Ledger
    from forgetflow.core.requests import DeletionRequest

    template = tmp_path / "template"
    template.mkdir()
    build_trained_workspace(template, epochs=2)
    ledger_url = (pg_database_factory("ffclaims") if backend == "postgresql"
                  else f"sqlite:///{tmp_path / 'copy' / 'ws' / 'ledger.db'}")
    env = copy_workspace(template, tmp_path / "copy", batch_params(TINY_PARAMS),
                         {"PREFECT_API_URL": str(PREFECT_API_URL.value()),
                          "FORGETFLOW_DB_URL": ledger_url})
    first, late_subject = submit_initial(ledger_url, env)
    ledger = Ledger(ledger_url)

    procs = [subprocess.Popen([*CLI, "process", "--json"], env=env, cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    deadline = time.monotonic() + 300
    while ledger.live_batch(NAME) is None:  # wait until one of them has claimed
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), \
            [p.communicate() for p in procs]
        time.sleep(0.2)
    late = ledger.submit(DeletionRequest(kind="subject", subject=late_subject), NAME)[0].id
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-3000:] for _, err in outputs]

    batches = ledger.batches(NAME)
    claimed = [rid for b in batches for rid in b["request_ids"]]
    assert sorted(claimed) == sorted([*first, late])  # every request in exactly one batch
    assert batches[0]["request_ids"] == first  # the running batch did not take the late one
    assert {b["status"] for b in batches} == {"done"}
    for rid in [*first, late]:
        request = ledger.get(rid)
        owner = next(b for b in batches if rid in b["request_ids"])
        assert request.status == "unlearned" and request.batch_id == owner["id"]
        assert request.model_version == owner["model_version"]

    uri = env["MLFLOW_TRACKING_URI"]
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    tagged = [v.tags.get("forgetflow.batch_id") for v in
              client.search_model_versions(f"name = '{NAME}'")]
    assert sorted(t for t in tagged if t) == sorted(b["id"] for b in batches)
