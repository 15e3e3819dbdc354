"""Deployments: the UI form comes from the pydantic request; prefect.yaml matches params."""

from __future__ import annotations

from pathlib import Path

import yaml

from flows.deployments import deployments
from flows.request import request_deletion
from forgetflow.core.params import load_params

ROOT = Path(__file__).resolve().parents[2]


def test_request_form_has_enums_and_descriptions() -> None:
    schema = request_deletion.parameters.model_dump()
    definitions = schema["definitions"]
    request = definitions["DeletionRequest"]["properties"]
    assert request["kind"]["enum"] == ["samples", "subject", "class", "backdoor"]
    assert all(request[k].get("description") for k in ("kind", "ids", "subject", "label"))
    trigger = definitions["TriggerIn"]["properties"]
    assert trigger["pattern"]["enum"] == ["square", "checkerboard"]


def test_served_and_declared_deployments_agree(params_file: Path) -> None:
    served = {d.name: d for d in deployments(str(params_file))}
    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    assert set(served) == {d["name"] for d in declared}
    shipped_cron = load_params(ROOT / "params.yaml").schedule.cron
    nightly = next(d for d in declared if d["name"] == "nightly-deletions")
    assert nightly["schedules"][0]["cron"] == shipped_cron
    assert served["nightly-deletions"].schedules[0].schedule.cron == "0 2 * * *"
    for d in declared:
        module, func = d["entrypoint"].split(":")
        assert (ROOT / module).exists() and func in (ROOT / module).read_text()


def test_ui_request_flow_validates_and_stores(prefect_harness: None, trained: dict) -> None:
    """The UI-triggered flow takes the pydantic request itself; bad ones fail, nothing stored."""
    import pytest

    from forgetflow.adapters.ledger import Ledger
    from forgetflow.adapters.workspace import Workspace
    from forgetflow.core.requests import DeletionRequest
    from forgetflow.pipeline.submission import SubmissionError

    out = request_deletion(DeletionRequest(kind="class", label=5, idempotency_key="ui-1"))
    assert out["status"] == "pending"
    again = request_deletion(DeletionRequest(kind="class", label=5, idempotency_key="ui-1"))
    assert again["id"] == out["id"]
    with pytest.raises(SubmissionError, match="outside the label space"):
        request_deletion(DeletionRequest(kind="class", label=42))
    assert len(Ledger(Workspace.from_env().ledger_url).list()) == 1
