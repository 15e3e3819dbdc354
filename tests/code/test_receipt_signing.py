"""Code tier: the receipt key (env or a 0600 workspace file made once) and HMAC signing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from forgetflow.adapters.workspace import Workspace
from forgetflow.pipeline.receipts import (
    ReceiptError,
    finite_metrics,
    key_id,
    receipt_key,
    sign,
    signature_ok,
)


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.delenv("FORGETFLOW_RECEIPT_KEY", raising=False)
    return Workspace(tmp_path / "ws")


def test_workspace_key_is_generated_once_owner_only(ws: Workspace) -> None:
    first = receipt_key(ws)
    path = ws.root / "receipt.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) == 64
    assert receipt_key(ws) == first  # reused, never regenerated


def test_environment_key_wins_and_must_be_long_enough(ws: Workspace,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGETFLOW_RECEIPT_KEY", "a-long-enough-secret")
    assert receipt_key(ws) == b"a-long-enough-secret"
    assert not (ws.root / "receipt.key").exists()
    monkeypatch.setenv("FORGETFLOW_RECEIPT_KEY", "short")
    with pytest.raises(ReceiptError, match="FORGETFLOW_RECEIPT_KEY is too short"):
        receipt_key(ws)


def test_a_key_file_others_can_read_is_refused(ws: Workspace) -> None:
    receipt_key(ws)
    (ws.root / "receipt.key").chmod(0o644)
    with pytest.raises(ReceiptError, match="readable by others"):
        receipt_key(ws)


def test_any_edit_breaks_the_signature() -> None:
    key = b"k" * 32
    body = {"request_id": 7, "model_version": "3", "gate_metrics": {"forget_acc": 0.125}}
    signed = sign(body, key)
    assert signed["key_id"] == key_id(key) and signature_ok(signed, key)
    assert not signature_ok(signed, b"x" * 32)
    for field, value in (("request_id", 8), ("model_version", "4"),
                         ("gate_metrics", {"forget_acc": 0.126}), ("key_id", "0" * 16)):
        assert not signature_ok({**signed, field: value}, key), field
    assert not signature_ok({**signed, "extra": 1}, key)
    reordered = dict(reversed(list(signed.items())))
    assert signature_ok(reordered, key)  # canonical JSON: key order does not matter


def test_metrics_that_json_cannot_hold_exactly_are_left_out() -> None:
    assert finite_metrics({"a": 0.5, "b": None, "c": float("nan"), "d": float("inf"),
                           "e": 2}) == {"a": 0.5, "e": 2.0}
