"""A workspace with one processed deletion batch (data v1 → v2, model v2 promoted to champion,
so its requests are done with receipts), built once per test module through the real flows.
Tests that tamper with it restore it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import TINY_PARAMS, build_trained_workspace


def processed_workspace(root: Path, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Train, submit a subject and a samples request, run `process_deletions` and `promote`
    (needs the Prefect harness). Returns {"env", "batch", "subject", "samples", "requests"}."""
    from flows.process_deletions import process_deletions
    from flows.promote import promote_flow
    from forgetflow.adapters.datarepo import DataRepo
    from forgetflow.adapters.ledger import Ledger
    from forgetflow.adapters.workspace import Workspace
    from forgetflow.core.requests import DeletionRequest

    params = root / "params.yaml"
    params.parent.mkdir(parents=True, exist_ok=True)
    params.write_text(yaml.safe_dump(TINY_PARAMS))
    gitconfig = root / "gitconfig"
    gitconfig.write_text("[user]\n\tname = forgetflow tests\n\temail = tests@forgetflow.local\n")
    env = {"FORGETFLOW_PARAMS": str(params), "GIT_CONFIG_GLOBAL": str(gitconfig),
           **(extra_env or {})}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        env.update(build_trained_workspace(root))
        for key, value in env.items():
            mp.setenv(key, value)
        ws = Workspace.from_env()
        repo = DataRepo(ws)
        m = repo.manifest(repo.version())
        train = m.split == "train"
        subject = str(m.subject[train][0])
        samples = sorted(m.ids[train & (m.subject != subject)][:40].tolist())
        ledger = Ledger(ws.ledger_url)
        asked = [DeletionRequest(kind="subject", subject=subject),
                 DeletionRequest(kind="samples", ids=samples)]
        requests = [ledger.submit(r, "ff-test")[0].id for r in asked]
        batch = process_deletions()
        assert batch["gate"] == "passed", batch
        assert promote_flow()["completed_requests"] == sorted(requests)
    return {"env": env, "batch": batch, "subject": subject, "samples": samples,
            "requests": requests}
