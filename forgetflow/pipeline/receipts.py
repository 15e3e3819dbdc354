"""Signed deletion receipts: what a requester (or an auditor) can check later.

A receipt names the request (id, kind, a digest of its selector), the model version that no
longer carries the data (and the sha256 of its weights file), the data versions before and
after (tags and git revs), the forget set's size and sha256, the rows of this request in the
exclusion manifest, the gate's metrics and the timestamps. It is signed with HMAC-SHA256 over
its canonical JSON, so any edit to the stored receipt is detectable, and `verify` re-derives
every claim from the ledger, the MLflow registry and the data repo, so an edit there is too.

The key: FORGETFLOW_RECEIPT_KEY when set; otherwise a random key generated on first use in the
workspace (`receipt.key`, mode 0600). Keep it: receipts signed with a lost key cannot be
verified. The receipt carries only a key id (a digest), never the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forgetflow.adapters.datarepo import DataRepo, Exclusions
from forgetflow.adapters.ledger import Ledger, RequestView
from forgetflow.adapters.registry import ModelRef, Registry
from forgetflow.adapters.workspace import Workspace

FORMAT = "forgetflow.receipt/1"
KEY_ENV = "FORGETFLOW_RECEIPT_KEY"
KEY_FILE = "receipt.key"
ALGORITHM = "HMAC-SHA256"


class ReceiptError(RuntimeError):
    """No receipt can be issued or checked (no key, unreadable key file, no receipt)."""


def receipt_key(ws: Workspace) -> bytes:
    """The signing key: the environment variable, else the workspace key file (created once,
    owner-only, with an exclusive create so two processes never write different keys)."""
    env = os.environ.get(KEY_ENV)
    if env is not None:
        if len(env) < 16:
            raise ReceiptError(f"{KEY_ENV} is too short: use at least 16 characters")
        return env.encode()
    path = ws.ensure().root / KEY_FILE
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: read theirs
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
    return _read_key_file(path)


def _read_key_file(path: Path) -> bytes:
    if path.stat().st_mode & 0o077:
        raise ReceiptError(f"receipt key file {path} is readable by others: chmod 600 it")
    key = path.read_text().strip()
    if len(key) < 16:
        raise ReceiptError(f"receipt key file {path} is empty or truncated")
    return key.encode()


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"forgetflow-receipt-key:" + key).hexdigest()[:16]


def canonical(receipt: dict[str, Any]) -> bytes:
    """The signed bytes: sorted keys, no whitespace, the signature itself left out."""
    body = {k: v for k, v in receipt.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def sign(body: dict[str, Any], key: bytes) -> dict[str, Any]:
    signed = {**body, "key_id": key_id(key), "algorithm": ALGORITHM}
    signed["signature"] = hmac.new(key, canonical(signed), hashlib.sha256).hexdigest()
    return signed


def signature_ok(receipt: dict[str, Any], key: bytes) -> bool:
    expected = hmac.new(key, canonical(receipt), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, str(receipt.get("signature", "")))


def ids_sha256(ids: Any) -> str:
    """The id-set digest of docs/design.md §8: sha256 of the sorted ids joined by newlines."""
    return hashlib.sha256("\n".join(sorted(map(str, ids))).encode()).hexdigest()


def selector_sha256(view: RequestView, sample_ids: list[str]) -> str:
    """Digest of what the requester asked for, as the ledger stores it."""
    body = {"kind": view.kind, "payload": view.payload, "ids_sha256": ids_sha256(sample_ids)}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def excluded_for(exclusions: Exclusions, request_id: int,
                 named: Iterable[str] = ()) -> list[str]:
    """The request's rows in the exclusion manifest: those it attributes to the request (the
    column may list several), and the `named` sample ids earlier requests removed already."""
    rid = str(request_id)
    return sorted({row[0] for row in exclusions.rows if rid in row[1].split(";")}
                  | (set(named) & exclusions.ids))


def removed_by(exclusions: Exclusions, sample_ids: set[str], rid: int) -> list[int]:
    """The other requests the exclusion manifest attributes any of these ids to."""
    found = {int(r) for sid, owners, *_ in exclusions.rows if sid in sample_ids
             for r in owners.split(";") if r}
    return sorted(found - {rid})


def same_subject_before(ledger: Ledger, view: RequestView) -> list[int]:
    """Earlier (lower id) unlearned/done requests for the subject a subject request names."""
    subject = str(view.payload.get("subject"))
    return [r for r in ledger.subjects_removed(view.model_name).get(subject, []) if r < view.id]


def named_ids(ledger: Ledger, view: RequestView, exclusions: Exclusions) -> list[str]:
    """Ids a request names that earlier requests may have removed: a samples request's ids; a
    subject request's rows removed by earlier requests for the same subject; none else."""
    if view.kind == "samples":
        return ledger.sample_ids(view.id)
    if view.kind == "subject":
        return sorted({i for r in same_subject_before(ledger, view)
                       for i in excluded_for(exclusions, r)})
    return []


def removed_earlier_by(ledger: Ledger, view: RequestView, exclusions: Exclusions) -> list[int]:
    """The other requests that removed rows this one names (receipt `rows_removed_earlier_by`)."""
    if view.kind == "subject":
        return same_subject_before(ledger, view)
    return removed_by(exclusions, set(named_ids(ledger, view, exclusions)), view.id)


def finite_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Gate metrics that JSON and SQL can hold exactly (None/NaN are left out)."""
    return {k: float(v) for k, v in sorted(metrics.items())
            if isinstance(v, int | float) and math.isfinite(float(v))}


def issue_receipts(ledger: Ledger, repo: DataRepo, registry: Registry, ref: ModelRef,
                   serving: dict[str, ModelRef], request_ids: list[int],
                   key: bytes) -> dict[int, dict[str, Any]]:
    """Signed receipts for requests `ref` (the gate-passed unlearned version) removed, issued
    when every serving alias points at a version built without their rows: each receipt names
    those serving versions too. Facts come from where `verify` reads them back: the version's
    lineage tags and run metrics, and the data repo."""
    after = repo.version(ref.tag("data_version"))
    before = repo.version(ref.tag("parent_data_version"))
    exclusions = repo.exclusions(after)
    issued_at = datetime.now(UTC).isoformat()
    metrics = finite_metrics(registry.metrics(ref))
    receipts = {}
    for rid in request_ids:
        view = ledger.get(rid)
        excluded = excluded_for(exclusions, rid, named_ids(ledger, view, exclusions))
        receipts[rid] = sign({
            "format": FORMAT, "request_id": rid, "kind": view.kind, "status": "done",
            "selector_sha256": selector_sha256(view, ledger.sample_ids(rid)),
            "batch_id": ref.tag("batch_id"), "model_name": ref.name,
            "model_version": ref.version, "parent_version": ref.tag("parent_version"),
            "model_sha256": ref.tag("model_sha256") or "",
            "data_version": after.tag, "data_rev": after.rev,
            "parent_data_version": before.tag, "parent_data_rev": before.rev,
            "forget_set_size": int(ref.tag("forget_set_size") or 0),
            "forget_set_sha256": ref.tag("forget_set_sha256"),
            "request_excluded_rows": len(excluded),
            "request_excluded_sha256": ids_sha256(excluded),
            "rows_removed_earlier_by": removed_earlier_by(ledger, view, exclusions),
            "method": ref.tag("method"), "gate": ref.tag("gate"),
            "gate_metrics": metrics,
            "serving": [{"alias": alias, "model_version": s.version,
                         "model_sha256": s.tag("model_sha256") or "",
                         "data_version": s.tag("data_version")}
                        for alias, s in sorted(serving.items())],
            "submitted_at": view.created_at.isoformat(), "issued_at": issued_at,
        }, key)
    return receipts

