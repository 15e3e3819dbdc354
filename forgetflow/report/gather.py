"""Everything an audit report shows about one registered version, gathered from the registry,
the ledger and the data registry into plain dicts (rendering lives in html.py)."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any

from forgetflow.core.ids import redacted_payload
from forgetflow.report.batch_figures import FIGURE_DIR, TITLES

LINEAGE_TAGS = ("kind", "method", "gate", "parent_version", "data_version",
                "parent_data_version", "forget_set_size", "forget_set_sha256",
                "deletion_request_ids", "batch_id", "escalations")
KEY_METRICS = ("test_acc", "test_acc_kept", "parent_test_acc_kept", "forget_acc", "retain_acc",
               "third_party_auc", "mia_efficacy", "mia_loss_acc", "asr", "unlearn_seconds")


def _request_ids(tag: str | None) -> list[int]:
    return [int(r) for r in (tag or "").split(",") if r.strip()]


def _figures(registry: Any, run_id: str) -> list[dict[str, str]]:
    """The run's figures as PNG data URIs (embedded: the report must open offline)."""
    names = {a.path for a in registry.client.list_artifacts(run_id, FIGURE_DIR)}
    if not names:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(registry.client.download_artifacts(run_id, FIGURE_DIR, tmp))
        order = {name: i for i, name in enumerate(TITLES)}
        out = []
        for png in sorted(local.glob("*.png"), key=lambda f: (order.get(f.stem, 99), f.stem)):
            data = base64.b64encode(png.read_bytes()).decode()
            out.append({"name": png.stem, "title": TITLES.get(png.stem, png.stem),
                        "data_uri": f"data:image/png;base64,{data}"})
    return out


def _gate(ledger: Any, batch_id: str | None) -> dict[str, Any]:
    if not batch_id:
        return {"checks": [], "decisions": [], "status": None}
    from forgetflow.adapters.ledger import LedgerError

    try:
        batch = ledger.batch(batch_id)
    except LedgerError:  # a version registered outside this ledger
        return {"checks": [], "decisions": [], "status": "unknown batch"}
    decisions = batch.get("decisions") or []
    return {"checks": decisions[-1].get("checks", []) if decisions else [],
            "decisions": [{k: d.get(k) for k in ("method", "config", "seconds", "gate")}
                          for d in decisions], "status": batch.get("status"),
            "started_at": _iso(batch.get("created_at")),
            "finished_at": _iso(batch.get("finished_at"))}


def _iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat()


def _signature(receipt: dict[str, Any] | None, key: bytes | None) -> bool | None:
    """Whether the receipt's signature matches this workspace's key (None: no key here)."""
    if not receipt or key is None:
        return None
    from forgetflow.pipeline.receipts import signature_ok

    return signature_ok(receipt, key)


def gather(name: str, version: str) -> dict[str, Any]:
    """The report's content for `name` at `version` (a number or an alias)."""
    from forgetflow.adapters.datarepo import DataRepo
    from forgetflow.adapters.ledger import Ledger, LedgerError
    from forgetflow.adapters.registry import Registry
    from forgetflow.adapters.workspace import Workspace

    ws = Workspace.from_env()
    registry, ledger, repo = Registry(ws), Ledger(ws.ledger_url), DataRepo(ws)
    ref = registry.ref(name, version)
    chain = []
    for link in registry.lineage(name, ref.version):
        metrics = registry.metrics(link)
        chain.append({"version": link.version, "aliases": sorted(link.aliases),
                      "tags": {k: link.tag(k) or "" for k in LINEAGE_TAGS},
                      "metrics": {k: metrics[k] for k in KEY_METRICS if k in metrics}})
    key = _receipt_key(ws)
    requests = []
    for link in chain:
        for rid in _request_ids(link["tags"]["deletion_request_ids"]):
            try:
                detail = ledger.get(rid).detail()
            except LedgerError:
                detail = {"id": rid, "status": "not in this ledger"}
            requests.append({**detail, "payload": redacted_payload(detail.get("payload")),
                             "in_version": link["version"],
                             "signature_ok": _signature(detail.get("receipt"), key)})
    data_versions = []
    for tag in dict.fromkeys(t for link in reversed(chain) for t in
                             (link["tags"]["parent_data_version"], link["tags"]["data_version"])
                             if t):
        info = repo.version(tag).info if repo.exists() else {}
        data_versions.append({"tag": tag, "rows": info.get("rows"),
                              "excluded": info.get("excluded", 0),
                              "manifest_sha256": info.get("manifest_sha256", ""),
                              "source": info.get("source"), "batch_id": info.get("batch_id"),
                              "request_ids": info.get("request_ids") or []})
    run_params = registry.client.get_run(ref.run_id).data.params
    thresholds = {k.removeprefix("gate."): v for k, v in run_params.items()
                  if k.startswith("gate.")}
    return {"model_name": name, "version": ref.version, "aliases": sorted(ref.aliases),
            "run_id": ref.run_id, "tags": chain[0]["tags"], "metrics": chain[0]["metrics"],
            "all_metrics": registry.metrics(ref), "thresholds": thresholds,
            "gate": _gate(ledger, ref.tag("batch_id")), "requests": requests,
            "lineage": chain, "data_versions": data_versions,
            "figures": _figures(registry, ref.run_id),
            "classes": (repo.version(chain[0]["tags"]["data_version"]).info.get("classes")
                        if repo.exists() and chain[0]["tags"]["data_version"] else None)}


def _receipt_key(ws: Any) -> bytes | None:
    """The key receipts are checked with; never created by reading a report."""
    import os

    from forgetflow.pipeline.receipts import KEY_ENV, KEY_FILE, receipt_key

    if os.environ.get(KEY_ENV) is None and not (ws.root / KEY_FILE).exists():
        return None
    return receipt_key(ws)
