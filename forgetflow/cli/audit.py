"""`forgetflow audit [--json]`: the compliance scan. Exit 0 when clean, 1 naming each
violation, 2 on a configuration error."""

from __future__ import annotations

from pathlib import Path

import typer

from forgetflow.cli.common import JSON, PARAMS, emit, say, user_errors


def audit(model: str = typer.Option(None, help="registered model (default: params)"),
          params: Path = PARAMS, as_json: bool = JSON) -> None:
    """Check that nothing serving holds a done request's rows, the newest data holds no
    forgotten row, every receipt verifies, one version per batch, nothing overdue."""
    with user_errors():
        from forgetflow.adapters.workspace import Workspace
        from forgetflow.pipeline.audit import audit as scan
        from forgetflow.pipeline.settings import load_checked

        result = scan(Workspace.from_env(), load_checked(params), model)
    emit(result, as_json, lambda r: "\n".join(
        [f"audit of {r['model_name']}: {r['checked']['requests']} request(s), "
         f"{r['checked']['done']} done, {r['checked']['versions']} version(s): "
         + ("clean" if r["clean"] else f"{len(r['violations'])} violation(s)")]
        + [f"VIOLATION {v['invariant']}: {v['detail']}" for v in r["violations"]]))
    if not result["clean"]:
        say(f"error: audit found {len(result['violations'])} violation(s)")
        raise typer.Exit(1)


def retention(model: str = typer.Option(None, help="registered model (default: params)"),
              params: Path = PARAMS, as_json: bool = JSON) -> None:
    """Apply retention now (every `process` and `promote` run does too): tag tainted
    versions, and delete the weights of those no alias has used for retention.tainted_days,
    leaving tombstones."""
    with user_errors():
        from forgetflow.adapters.ledger import Ledger
        from forgetflow.adapters.registry import Registry
        from forgetflow.adapters.workspace import Workspace
        from forgetflow.pipeline.settings import load_checked
        from forgetflow.pipeline.taint import sweep

        ws, settings = Workspace.from_env(), load_checked(params)
        name = model or settings.registry.model_name
        result = sweep(Registry(ws), Ledger.open(ws.ledger_url), name, settings)
    emit({"model_name": name, **result}, as_json, lambda r: (
        f"retention of {name}: newly tainted {r['tainted'] or 'none'}; aliases removed "
        f"{r['aliases_removed'] or 'none'}; weights deleted (tombstones) {r['purged'] or 'none'}"))
