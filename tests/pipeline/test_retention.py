"""Tainted versions: a version whose data still holds rows of an unlearned or done request is
tagged, no alias may move onto it, and its weights leave the artifact store once no alias has
used it for `retention.tainted_days`, leaving a tombstone that lineage and receipts still read.
The audit names each invariant when it is tampered with."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.registry import TAG, Registry, RegistryError
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app
from forgetflow.core.params import RetentionParams, load_params
from forgetflow.pipeline.audit import audit
from forgetflow.pipeline.taint import sweep

from .batches import processed_workspace

runner = CliRunner()
NAME = "ff-test"


def cli(*args: str, code: int = 0) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if result.stdout.strip() else {}


def invariants(now: datetime | None = None) -> dict[str, list[str]]:
    params = load_params(None)
    found: dict[str, list[str]] = {}
    for v in audit(Workspace.from_env(), params, NAME, now=now)["violations"]:
        found.setdefault(v["invariant"], []).append(v["detail"])
    return found


def weights_dir(registry: Registry, version: str) -> Path:
    uri = registry.client.get_model_version_download_uri(NAME, version)
    return Path(uri.removeprefix("file://"))


def test_tainted_versions_are_refused_purged_and_still_verify(
        prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = processed_workspace(tmp_path / "ws")
    for key, value in done["env"].items():
        monkeypatch.setenv(key, value)
    registry, first_batch = Registry(Workspace.from_env()), done["batch"]["batch_id"]

    # the base model held the done requests' rows: tagged, aliases refused, weights deleted
    base = registry.ref(NAME, "1")
    assert (base.tag("tainted"), base.tag("tainted_by")) == ("true", first_batch)
    assert base.tag("tombstone") and not base.aliases
    assert not registry.artifacts_stored(base) and not weights_dir(registry, "1").exists()
    with pytest.raises(RegistryError, match="tombstone"):
        registry.load(base)
    # the tombstone keeps what lineage and receipts read: tags, weights digest, metrics
    assert len(base.tag("model_sha256") or "") == 64 and base.tag("data_version") == "v1"
    assert registry.metrics(base) and [r.version for r in registry.lineage(NAME, "2")] == ["2", "1"]
    for move in (lambda: registry.set_alias(NAME, "canary", "1"),
                 lambda: registry.set_alias(NAME, "champion", "1")):
        with pytest.raises(RegistryError, match="tainted"):
            move()
    refused = runner.invoke(app, ["promote", "--version", "1"])
    assert refused.exit_code != 0 and "v1" in refused.output
    assert invariants() == {}

    # a second batch under a 30-day retention: v2 is tainted once its successor serves, keeps
    # its weights for 30 days, then only its tombstone stays and the receipts still verify
    params = yaml.safe_load(Path(done["env"]["FORGETFLOW_PARAMS"]).read_text())
    params["retention"] = {"tainted_days": 30}
    params["promote"] = {"auto": True}
    later = tmp_path / "later.yaml"
    later.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("FORGETFLOW_PARAMS", str(later))
    rid = cli("request", "submit", "--kind", "class", "--label", "3")["id"]
    batch = cli("process")
    assert batch["promoted"]["completed_requests"] == [rid], batch
    v2 = registry.ref(NAME, "2")
    assert (v2.tag("tainted"), v2.tag("tainted_by")) == ("true", batch["batch_id"])
    assert not v2.tag("tombstone") and registry.artifacts_stored(v2)
    assert invariants() == {}
    month = datetime.now(UTC) + timedelta(days=31)
    assert "past retention" in invariants(month)["retention"][0]
    assert cli("retention")["purged"] == []  # not yet: 30 days
    # a sweep that tags a version and judges its retention in one pass stamps the tag with its
    # own clock: with no retention time the version it tags goes in that same pass, however
    # late the tag lands (a wall-clock stamp a second past the sweep's clock left it stored,
    # and the end-of-run audit just after failed the batch)
    for key in ("tainted", "tainted_at", "alias_left_at"):  # only the sweep's clock is left
        registry.client.delete_model_version_tag(NAME, "2", TAG + key)
    no_wait = load_params(None).model_copy(update={"retention": RetentionParams()})
    purged = sweep(registry, Ledger.open(Workspace.from_env().ledger_url), NAME, no_wait,
                   now=datetime.now(UTC) - timedelta(seconds=5))
    assert (purged["tainted"], purged["purged"]) == (["2"], ["2"])
    assert not registry.artifacts_stored(registry.ref(NAME, "2"))
    assert invariants(month) == {}
    for request in done["requests"]:  # their receipts name v2 as unlearned and serving
        verified = cli("receipt", "verify", str(request))
        assert verified["verified"] is True, verified["mismatches"]
        assert any("tombstone" in c["name"] and c["ok"] for c in verified["checks"])

    # tampering: a tainted tag removed, an alias pointed at a tainted version behind our back
    registry.client.delete_model_version_tag(NAME, "1", TAG + "tainted")
    assert "not tagged tainted" in invariants()["tainted-tagged"][0]
    assert cli("retention")["tainted"] == ["1"] and invariants() == {}
    registry.client.set_registered_model_alias(NAME, "archive", "2")
    assert "'archive'" in invariants()["alias-untainted"][0]
    assert cli("retention")["aliases_removed"] == ["archive→v2"] and invariants() == {}
    assert runner.invoke(app, ["audit"]).exit_code == 0
