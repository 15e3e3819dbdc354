"""Signed receipts (issue 9 item 4): every done request gets one, `forgetflow receipt verify`
re-derives it from the ledger, the registry and the data repo, and tampering with any of the
three, or with the receipt itself, fails loudly (exit 1, naming what disagrees)."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.ledger_schema import RequestRow
from forgetflow.adapters.registry import Registry
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app

from .batches import processed_workspace

runner = CliRunner()


@pytest.fixture(scope="module")
def processed(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return processed_workspace(tmp_path_factory.mktemp("receipts"))


@pytest.fixture
def batch_ws(processed: dict[str, Any], workspace: Path,
             monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for key, value in processed["env"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("FORGETFLOW_RECEIPT_KEY", raising=False)
    return processed


def verify(rid: int) -> tuple[int, dict[str, Any], str]:
    result = runner.invoke(app, ["receipt", "verify", str(rid), "--json"])
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}, result.stderr


def assert_verifies(rid: int) -> dict[str, Any]:
    code, out, err = verify(rid)
    assert code == 0 and out["verified"], err
    return out


def assert_mismatch(rid: int, *names: str) -> str:
    code, out, err = verify(rid)
    assert code == 1 and out["verified"] is False, err
    assert "does NOT verify" in err
    for name in names:
        assert name in err, f"{name!r} not reported:\n{err}"
    return err


def test_every_done_request_has_a_verified_signed_receipt(batch_ws: dict[str, Any]) -> None:
    ws = Workspace.from_env()
    key_file = ws.root / "receipt.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    for rid in batch_ws["requests"]:
        receipt = Ledger(ws.ledger_url).get(rid).receipt
        assert receipt["algorithm"] == "HMAC-SHA256" and re.fullmatch(r"[0-9a-f]{64}",
                                                                      receipt["signature"])
        assert receipt["model_version"] == batch_ws["batch"]["model_version"]
        assert receipt["data_version"] == "v2" and receipt["parent_data_version"] == "v1"
        assert receipt["forget_set_sha256"] == batch_ws["batch"]["forget_set_sha256"]
        assert receipt["request_excluded_rows"] > 0 and "forget_acc" in receipt["gate_metrics"]
        assert not set(batch_ws["samples"]) & set(json.dumps(receipt).split('"'))  # no ids
        out = assert_verifies(rid)
        sources = {c["source"] for c in out["checks"]}
        assert sources == {"receipt", "ledger", "registry", "data repo"}
        assert len(out["checks"]) >= 25
        signature = next(c for c in out["checks"] if c["name"] == "signature matches the content")
        assert signature["ok"] and signature["found"] == signature["receipt"]  # no false alarm


def test_tampered_registry_tag_is_detected(batch_ws: dict[str, Any]) -> None:
    registry = Registry(Workspace.from_env())
    version = batch_ws["batch"]["model_version"]
    original = registry.ref("ff-test", version).tag("forget_set_sha256")
    registry.client.set_model_version_tag("ff-test", version, "forgetflow.forget_set_sha256",
                                          "0" * 64)
    try:
        assert_mismatch(batch_ws["requests"][0], "registry: tag forgetflow.forget_set_sha256")
    finally:
        registry.client.set_model_version_tag("ff-test", version,
                                              "forgetflow.forget_set_sha256", original)
    assert_verifies(batch_ws["requests"][0])


@contextmanager
def edited_exclusions(repo: DataRepo, drop_request: int) -> Iterator[None]:
    """Rewrite v2's exclusions.csv where it is stored (working copy and DVC cache object),
    leaving out the rows of one request; restored afterwards."""
    dvcfile = (repo.path / "exclusions.csv.dvc").read_text()
    md5 = re.search(r"md5: ([0-9a-f]{32})", dvcfile).group(1)
    targets = [repo.path / "exclusions.csv",
               repo.path / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]]
    original = targets[0].read_bytes()
    lines = original.decode().splitlines()
    kept = [ln for ln in lines if ln.split(",")[1:2] != [str(drop_request)]]
    assert len(kept) < len(lines)
    try:
        for path in targets:
            path.chmod(0o644)
            path.write_text("\n".join(kept) + "\n")
        yield
    finally:
        for path in targets:
            path.write_bytes(original)


def test_tampered_exclusion_manifest_is_detected(batch_ws: dict[str, Any]) -> None:
    rid = batch_ws["requests"][1]  # the samples request
    with edited_exclusions(DataRepo(Workspace.from_env()), rid):
        err = assert_mismatch(rid, "exclusion manifest rows of this request",
                              "every requested sample id is excluded")
        assert "data repo" in err
    assert_verifies(rid)


def set_receipt(rid: int, receipt: dict[str, Any]) -> None:
    ledger = Ledger(Workspace.from_env().ledger_url)
    with ledger.engine.begin() as conn:
        conn.execute(update(RequestRow).where(RequestRow.id == rid).values(receipt=receipt))


def test_tampered_receipt_is_detected(batch_ws: dict[str, Any]) -> None:
    rid = batch_ws["requests"][0]
    original = Ledger(Workspace.from_env().ledger_url).get(rid).receipt
    set_receipt(rid, {**original, "forget_set_size": original["forget_set_size"] - 1})
    try:
        assert_mismatch(rid, "signature matches the content",
                        "forget set size (recomputed from manifests)")
        set_receipt(rid, {**original, "issued_at": "2020-01-01T00:00:00+00:00"})
        assert_mismatch(rid, "signature matches the content")  # even a harmless-looking edit
    finally:
        set_receipt(rid, original)
    assert_verifies(rid)


def test_replaced_model_weights_are_detected(batch_ws: dict[str, Any]) -> None:
    registry = Registry(Workspace.from_env())
    mv = registry.client.get_model_version("ff-test", batch_ws["batch"]["model_version"])
    logged = registry.client.get_logged_model(mv.source.removeprefix("models:/"))
    weights = Path(logged.artifact_location.removeprefix("file://")) / \
        "forgetflow/model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[:-4] + bytes(4))
    try:
        assert_mismatch(batch_ws["requests"][0], "stored weights file sha256")
    finally:
        weights.write_bytes(original)
    assert_verifies(batch_ws["requests"][0])


def test_another_key_and_unknown_ids(batch_ws: dict[str, Any],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    rid = batch_ws["requests"][0]
    monkeypatch.setenv("FORGETFLOW_RECEIPT_KEY", "another-key-of-some-length")
    assert_mismatch(rid, "signed with this workspace's key")
    monkeypatch.delenv("FORGETFLOW_RECEIPT_KEY")
    result = runner.invoke(app, ["receipt", "verify", "99999"])
    assert result.exit_code == 2 and "no deletion request with id 99999" in result.stderr
