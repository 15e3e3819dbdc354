"""The deletion-request deployment as the Prefect UI sees it: its parameter schema read back
from the Prefect API (descriptions, the kind drop-down, defaults), and enforcement on, so the
API itself refuses a run whose parameters do not validate."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import get_client

from flows.deployments import deployments

KINDS = ["samples", "subject", "class", "backdoor"]


def test_request_form_schema_from_the_api(prefect_harness: None, params_file: Path) -> None:
    served = {d.name: d for d in deployments(str(params_file))}
    deployment_id = served["deletion-request"].apply()
    with get_client(sync_client=True) as client:
        stored = client.read_deployment(deployment_id)
        assert stored.enforce_parameter_schema is True
        schema = stored.parameter_openapi_schema
        props = schema["properties"]
        assert props["request"]["$ref"] == "#/definitions/DeletionRequest"
        assert "selector" in props["request"]["description"]
        assert props["process_now"]["default"] is False and props["process_now"]["description"]
        assert props["params_file"]["default"] is None
        assert stored.parameters == {"params_file": str(params_file)}
        assert schema["required"] == ["request"]

        request = schema["definitions"]["DeletionRequest"]
        assert request["properties"]["kind"]["enum"] == KINDS
        assert request["required"] == ["kind"]
        for field in ("kind", "ids", "subject", "label", "trigger", "idempotency_key",
                      "model_name"):
            assert request["properties"][field].get("description"), field
        trigger = schema["definitions"]["TriggerIn"]["properties"]
        assert trigger["pattern"]["enum"] == ["square", "checkerboard"]
        assert (trigger["pattern"]["default"], trigger["size"]["default"],
                trigger["position"]["default"], trigger["target"]["default"]) == (
            "square", 4, "bottom-right", 0)

        ok = client.create_flow_run_from_deployment(
            deployment_id, parameters={"request": {"kind": "class", "label": 3}})
        assert ok.parameters["request"] == {"kind": "class", "label": 3}
        with pytest.raises(httpx.HTTPStatusError) as refused:
            client.create_flow_run_from_deployment(
                deployment_id, parameters={"request": {"kind": "everything"}})
        assert refused.value.response.status_code in (409, 422)
        assert "everything" in refused.value.response.text


def test_every_served_deployment_enforces_its_schema(params_file: Path) -> None:
    assert all(d.enforce_parameter_schema for d in deployments(str(params_file)))
