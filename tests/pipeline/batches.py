"""Pending and processed deletion batches on a trained workspace, built through the real
ledger and flows: `trained_with_requests` (data v1, champion v1 and submitted requests; used
by the crash tests' template too) and `processed_workspace` (one processed batch: data v1 →
v2, model v2 promoted to champion, so its requests are done with receipts), built once per
test module. Tests that tamper with it restore it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from .conftest import TINY_PARAMS, build_trained_workspace

if TYPE_CHECKING:
    from forgetflow.core.data.manifest import Manifest
    from forgetflow.core.requests import DeletionRequest


@contextmanager
def trained_with_requests(root: Path, choose: Callable[[Manifest], list[DeletionRequest]],
                          env: dict[str, str] | None = None, epochs: int = 3
                          ) -> Iterator[tuple[dict[str, str], list[int]]]:
    """With `env` set: data v1 + champion v1 under `root` (build_trained_workspace), then the
    requests `choose` picks from the v1 manifest submitted to the ledger. Inside the block the
    environment (`env` plus the workspace's) stays set; yields it and the request ids."""
    from forgetflow.adapters.datarepo import DataRepo
    from forgetflow.adapters.ledger import Ledger
    from forgetflow.adapters.workspace import Workspace

    env = dict(env or {})
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        env.update(build_trained_workspace(root, epochs=epochs))
        for key, value in env.items():
            mp.setenv(key, value)
        ws = Workspace.from_env()
        repo = DataRepo(ws)
        asked = choose(repo.manifest(repo.version()))
        ledger = Ledger(ws.ledger_url)
        requests = [ledger.submit(r, "ff-test")[0].id for r in asked]
        ledger.close()
        yield env, requests


def processed_workspace(root: Path, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Train, submit a subject and a samples request, run `process_deletions` and `promote`
    (needs the Prefect harness). Returns {"env", "batch", "subject", "samples", "requests"}."""
    from flows.process_deletions import process_deletions
    from flows.promote import promote_flow
    from forgetflow.core.requests import DeletionRequest

    params = root / "params.yaml"
    params.parent.mkdir(parents=True, exist_ok=True)
    params.write_text(yaml.safe_dump(TINY_PARAMS))
    gitconfig = root / "gitconfig"
    gitconfig.write_text("[user]\n\tname = forgetflow tests\n\temail = tests@forgetflow.local\n")
    picked: dict[str, Any] = {}

    def choose(m: Manifest) -> list[DeletionRequest]:
        train = m.split == "train"
        picked["subject"] = subject = str(m.subject[train][0])
        picked["samples"] = sorted(m.ids[train & (m.subject != subject)][:40].tolist())
        return [DeletionRequest(kind="subject", subject=subject),
                DeletionRequest(kind="samples", ids=picked["samples"])]

    with trained_with_requests(root, choose, {"FORGETFLOW_PARAMS": str(params),
                                              "GIT_CONFIG_GLOBAL": str(gitconfig),
                                              **(extra_env or {})}) as (env, requests):
        batch = process_deletions()
        assert batch["gate"] == "passed", batch
        assert promote_flow()["completed_requests"] == sorted(requests)
    return {"env": env, "batch": batch, **picked, "requests": requests}
