"""`forgetflow receipt verify ID [--json]`: check a done request's signed receipt against the
ledger, the registry and the data repo. Exit 0 when every claim holds, 1 on any mismatch (each
one printed), 2 for an unknown request id."""

from __future__ import annotations

import typer

from forgetflow.cli.common import JSON, emit, say, user_errors

receipt_app = typer.Typer(no_args_is_help=True, help="Signed deletion receipts.")


@receipt_app.command("verify")
def verify(request_id: int = typer.Argument(..., help="request id"),
           as_json: bool = JSON) -> None:
    """Re-derive every claim of the receipt; any disagreement fails loudly."""
    with user_errors():
        from forgetflow.adapters.workspace import Workspace
        from forgetflow.pipeline.receipt_check import verify_receipt

        result = verify_receipt(Workspace.from_env(), request_id)
    lines = result.pop("lines")
    emit(result, as_json, lambda r: "\n".join(lines) + (
        f"\nreceipt of request {request_id}: verified ({len(lines)} checks)" if r["verified"]
        else ""))
    if not result["verified"]:
        say(f"error: receipt of request {request_id} does NOT verify: "
            f"{len(result['mismatches'])} mismatch(es)")
        for line in result["mismatches"]:
            say(f"  {line}")
        raise typer.Exit(1)
