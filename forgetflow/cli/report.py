"""`forgetflow report VERSION --out FILE`: the self-contained HTML audit report."""

from __future__ import annotations

from pathlib import Path

import typer

from forgetflow.cli.common import JSON, PARAMS, UserInputError, emit, user_errors


def report(version: str = typer.Argument(..., help="version number or alias (champion, ...)"),
           out: Path = typer.Option(..., "--out", help="HTML file to write"),
           model: str = typer.Option(None, help="registered model (default: params)"),
           params: Path = PARAMS, as_json: bool = JSON) -> None:
    """Requests and receipts, lineage to the base model, data versions, gate metrics against
    thresholds, and the batch's figures, in one HTML file that opens offline."""
    with user_errors():
        from forgetflow.core.params import load_params
        from forgetflow.report.gather import gather
        from forgetflow.report.html import render

        settings = load_params(params)
        name = model or settings.registry.model_name
        content = {**gather(name, version), "sla_days": settings.sla.days}
        document = render(content)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(document, encoding="utf-8")
        except OSError as exc:  # a directory, a file where a folder should be, no permission
            raise UserInputError(f"cannot write the report to {out}: "
                                 f"{exc.strerror or exc}") from exc
        emit({"path": str(out), "bytes": out.stat().st_size, "model_name": name,
              "version": content["version"], "figures": len(content["figures"])}, as_json,
             lambda r: f"report on {name} v{r['version']}: {r['path']} ({r['bytes']} bytes, "
                       f"{r['figures']} figure(s))")
