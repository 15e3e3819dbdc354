"""`forgetflow status`: pending requests, champion and challenger, and the last batch at a
glance. Reads the ledger and MLflow's SQL store only, so it answers well under a second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from forgetflow.cli.common import JSON, PARAMS, emit, user_errors

BATCH_KEYS = ("id", "status", "request_ids", "parent_version", "model_version",
              "parent_data_version", "data_version", "gate", "error", "created_at",
              "finished_at")


def model_aliases(name: str) -> dict[str, str]:
    """alias → version, from the SQL store when possible, else through the MLflow client."""
    from forgetflow.adapters import registry_sql
    from forgetflow.adapters.workspace import Workspace

    ws = Workspace.from_env()
    found = registry_sql.aliases(ws.mlflow_tracking_uri, name)
    if found is not None:
        return found
    from forgetflow.adapters.registry import Registry

    registry = Registry(ws)
    if not registry.model_exists(name):
        return {}
    refs = {a: registry.alias(name, a) for a in ("champion", "challenger")}
    return {a: ref.version for a, ref in refs.items() if ref is not None}


def status_payload(name: str, sla: Any = None) -> dict[str, Any]:
    """The `status --json` object: pending, champion, challenger, last_batch, and the open
    requests past (overdue) or near (at_risk) their due date."""
    from forgetflow.adapters.ledger import Ledger
    from forgetflow.adapters.workspace import Workspace
    from forgetflow.core.params import SlaParams
    from forgetflow.pipeline.sla import at_risk, overdue

    sla = sla or SlaParams()
    ledger = Ledger(Workspace.from_env().ledger_url)
    try:
        pending = [r.summary() for r in ledger.list(status="pending", model_name=name)]
        batch = ledger.last_batch(name)
        late = {key: [{**r.summary(), "due_at": r.due_at(sla.days).isoformat()}
                      for r in rows]
                for key, rows in (("overdue", overdue(ledger, sla, name)),
                                  ("at_risk", at_risk(ledger, sla, name)))}
    finally:
        ledger.close()
    aliases = model_aliases(name)

    def ref(alias: str) -> dict[str, str] | None:
        return {"name": name, "version": aliases[alias]} if alias in aliases else None

    last = None
    if batch is not None:
        last = {k: batch.get(k) for k in BATCH_KEYS}
        last["request_count"] = len(batch.get("request_ids") or [])
    return {"pending": pending, "champion": ref("champion"), "challenger": ref("challenger"),
            "last_batch": last, **late}


def human(payload: dict[str, Any]) -> str:
    def version(ref: dict | None) -> str:
        return f"v{ref['version']}" if ref else "none"

    name = (payload["champion"] or payload["challenger"] or {}).get("name", "")
    lines = [f"model {name or '(not registered)'}: champion {version(payload['champion'])}, "
             f"challenger {version(payload['challenger'])}"]
    pending = payload["pending"]
    lines.append(f"pending: {len(pending)} request(s)" + (": " + ", ".join(
        f"#{r['id']} {r['kind']}" for r in pending[:10]) if pending else ""))
    for key, words in (("overdue", "OVERDUE"), ("at_risk", "due soon")):
        if payload.get(key):
            lines.append(f"{words}: {len(payload[key])} request(s): " + ", ".join(
                f"#{r['id']} {r['status']} due {r['due_at'][:10]}" for r in payload[key][:10]))
    b = payload["last_batch"]
    if b is None:
        lines.append("last batch: none yet")
    else:
        lines.append(f"last batch {b['id']}: {b['status']}, requests {b['request_ids']} → "
                     f"v{b['model_version'] or '-'} (data {b['data_version'] or '-'}), "
                     f"gate {b['gate'] or '-'}, finished {b['finished_at'] or '-'}")
        if b.get("error"):
            lines.append(f"  error: {b['error']}")
    return "\n".join(lines)


def status(model: str = typer.Option(None, help="registered model (default: params)"),
           params: Path = PARAMS, as_json: bool = JSON) -> None:
    """Pending requests, champion and challenger, and the last batch at a glance."""
    with user_errors():
        from forgetflow.core.params import load_params

        settings = load_params(params)
        name = model or settings.registry.model_name
        emit(status_payload(name, settings.sla), as_json, human)
