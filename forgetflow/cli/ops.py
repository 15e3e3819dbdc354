"""CLI verbs of the deletion workflow: request submit|list|show, process, promote, serve, demo.
Registered onto the app by forgetflow.cli.app."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any, NoReturn

import typer

from forgetflow.cli.common import (
    JSON,
    PARAMS,
    UserInputError,
    check_stack,
    emit,
    is_user_error,
    say,
    set_nproc,
    user_errors,
)

MAX_IDS_FILE_BYTES = 32 << 20  # 100k ids (the request limit) fit many times over


def _read_ids(path: Path) -> list[str]:
    if not path.exists():
        raise FileNotFoundError(f"ids file {path} does not exist")
    if path.is_file() and path.stat().st_size > MAX_IDS_FILE_BYTES:
        raise UserInputError(f"--ids-file {path} is {path.stat().st_size} bytes; at most "
                             f"{MAX_IDS_FILE_BYTES} (split the request)")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a leading BOM (Notepad) is no id
    except UnicodeDecodeError as exc:
        raise UserInputError(f"--ids-file {path} is not UTF-8 text ({exc.reason} at byte "
                             f"{exc.start}); write one sample id per line") from exc
    except OSError as exc:
        raise UserInputError(f"--ids-file {path} cannot be read: {exc.strerror}") from exc
    # sample ids are NFC (folder keys are normalised): an id copied from macOS (NFD) matches
    ids = [unicodedata.normalize("NFC", ln.strip()) for ln in text.splitlines() if ln.strip()]
    if not ids:
        raise UserInputError(f"--ids-file {path} holds no sample ids; write one id per line")
    return ids


def _class_index(text: str, repo: Any) -> tuple[int, str | None]:
    """A class given by name ("Trouser", "cat") or by index ("3"), with its name when the data
    version lists one. An exact name wins (folders named 0..10 sort as text, so "2" may be the
    name of class 3); then an index in ASCII digits; then a name ignoring case, when that
    finds one class only."""
    name = unicodedata.normalize("NFC", text.strip())
    if not name:
        raise UserInputError("--label is empty: give the class's index or its name")
    classes: list[str] = []
    version = repo.version() if repo.exists() else None
    if version is not None:
        classes = [unicodedata.normalize("NFC", str(c)) for c in version.info.get("classes")
                   or []]
    if name in classes:
        return classes.index(name), name
    if re.fullmatch(r"-?[0-9]+", name):
        index = int(name)
        return index, classes[index] if 0 <= index < len(classes) else None
    if version is None:
        raise UserInputError(f"--label {text!r} is not a number and there is no data version "
                             "to look class names up in; run `forgetflow data prepare` first")
    loose = [i for i, c in enumerate(classes) if c.casefold() == name.casefold()]
    if len(loose) == 1:
        return loose[0], classes[loose[0]]
    listed = ", ".join(f"{i} {c}" for i, c in enumerate(classes))
    what = "matches several classes ignoring case" if loose else "names no class"
    raise UserInputError(f"--label {text!r} {what} of data version {version.tag} ({listed}); "
                         "give the exact name or the index")


def submit(kind: str = typer.Option(..., help="samples | subject | class | backdoor"),
           ids_file: Path = typer.Option(None, help="samples: one sample id per line"),
           subject: str = typer.Option(None, help="subject: the data owner's id"),
           label: str = typer.Option(None, help="class: the label to forget, as its index or "
                                     "its class name in the data version"),
           trigger: Path = typer.Option(None, help="backdoor: trigger spec JSON file"),
           idempotency_key: str = typer.Option(None, help="same key twice → one request"),
           model: str = typer.Option(None, help="registered model (default: params)"),
           params: Path = PARAMS, as_json: bool = JSON) -> None:
    """Validate a request against the newest data version and the registry, then store it."""
    with user_errors():
        check_stack(s3=False)
        import json

        from forgetflow.adapters.datarepo import DataRepo
        from forgetflow.adapters.ledger import Ledger
        from forgetflow.adapters.registry import Registry
        from forgetflow.adapters.workspace import Workspace
        from forgetflow.core.params import load_params
        from forgetflow.core.requests import DeletionRequest
        from forgetflow.pipeline.submission import validate_submission

        ws = Workspace.from_env()
        raw: dict[str, Any] = {"kind": kind, "idempotency_key": idempotency_key,
                               "model_name": model, "subject": subject,
                               "label": None}
        class_name = None
        if label is not None:
            raw["label"], class_name = _class_index(label, DataRepo(ws))
        if ids_file is not None:
            raw["ids"] = _read_ids(ids_file)
        if trigger is not None:
            try:
                raw["trigger"] = json.loads(trigger.read_text(encoding="utf-8-sig"))
            except (OSError, ValueError) as exc:  # JSON and UTF-8 decoding errors
                raise UserInputError(f"cannot read trigger spec {trigger}: {exc}") from exc
        request = DeletionRequest.model_validate(raw)
        name = request.model_name or load_params(params).registry.model_name
        ledger = Ledger.open(ws.ledger_url)
        existing = ledger.find_by_key(request.idempotency_key) if idempotency_key else None
        if existing is None:
            count = validate_submission(request, DataRepo(ws), Registry(ws), name)
            say(f"request names {count} training sample(s)")
        view, created = ledger.submit(request, name)
        if class_name is not None:  # said once it stands, so an error stays one line
            say(f"label {raw['label']} is class {class_name!r}")
        say(f"request {view.id} {'submitted' if created else 'already exists (same key)'}")
        emit({"id": view.id, "status": view.status}, as_json)


def list_requests(status: str = typer.Option(None, help="only this status"),
                  overdue: bool = typer.Option(False, "--overdue", help="only open requests "
                                               "past their due date (params sla.days)"),
                  params: Path = PARAMS, as_json: bool = JSON) -> None:
    """All requests with their status, reason, resulting model version and due date."""
    with user_errors():
        from forgetflow.adapters.ledger import Ledger, check_status
        from forgetflow.adapters.workspace import Workspace
        from forgetflow.core.params import load_params
        from forgetflow.pipeline.sla import overdue as past_due

        check_status(status)  # the --overdue path does not go through ledger.list
        sla = load_params(params).sla
        ledger = Ledger.open(Workspace.from_env().ledger_url)
        views = past_due(ledger, sla) if overdue else ledger.list(status)
        rows = [{**r.summary(), "due_at": r.due_at(sla.days).isoformat()} for r in views
                if status is None or r.status == status]
        emit(rows, as_json, lambda rs: "\n".join(
            f"{r['id']:>5}  {r['kind']:<8} {r['status']:<10} v{r['model_version'] or '-'}  "
            f"due {r['due_at'][:10]}  {r['reason'] or ''}" for r in rs) or "no requests")


def show(request_id: int = typer.Argument(..., help="request id"), as_json: bool = JSON) -> None:
    """One request with its receipt."""
    with user_errors():
        from forgetflow.adapters.ledger import Ledger
        from forgetflow.adapters.workspace import Workspace

        emit(Ledger.open(Workspace.from_env().ledger_url).get(request_id).detail(), as_json)


def withdraw(request_id: int = typer.Argument(..., help="request id"),
             reason: str = typer.Option("withdrawn by the submitter", help="kept as the reason"),
             as_json: bool = JSON) -> None:
    """Withdraw a pending request (submitted by mistake): it ends `rejected` with the reason;
    one a batch has taken can no longer be withdrawn."""
    with user_errors():
        from forgetflow.adapters.ledger import Ledger
        from forgetflow.adapters.workspace import Workspace

        text = " ".join(reason.split())[:500]
        if not text:
            raise UserInputError("--reason is empty")
        view = Ledger.open(Workspace.from_env().ledger_url).withdraw(request_id, text)
        emit(view.detail(), as_json, lambda d: f"request {d['id']}: {d['status']} ({d['reason']})")


def process(model: str = typer.Option(None, help="registered model (default: params)"),
            nproc: int = typer.Option(1, min=1, help="processes for Retrain when the gate "
                                      "escalates to it (torchrun + DDP)"),
            params: Path = PARAMS, as_json: bool = JSON) -> None:
    """Flow `process_deletions`: resume a batch whose lease expired, then the pending
    requests in batches of at most params batch.max_requests."""
    with user_errors():
        check_stack()
        set_nproc(nproc)
        from forgetflow.adapters.ledger import Ledger
        from forgetflow.adapters.registry import Registry, RegistryError
        from forgetflow.adapters.workspace import Workspace
        from forgetflow.pipeline.settings import load_checked

        ws = Workspace.from_env()
        name = model or load_checked(params).registry.model_name
        if model and not Registry(ws).model_exists(model):
            raise RegistryError(f"no registered model named {model!r}")
        if not Ledger.open(ws.ledger_url).has_work(name):
            say(f"no pending deletion requests for {name}: nothing to do")
            emit({"request_ids": []}, as_json)
            return
        from flows.process_deletions import process_deletions
        from forgetflow.pipeline.audit import AuditFailed
        from forgetflow.pipeline.lease import LeaseLost
        from forgetflow.pipeline.sla import OverdueRequests

        late: OverdueRequests | AuditFailed | None = None
        try:
            result = process_deletions(name, str(params) if params else None)
        except (OverdueRequests, AuditFailed) as exc:  # the batches ran; the run ends failed
            result, late = exc.result or {}, exc
        except LeaseLost as exc:  # stalled past the lease: the worker that took over goes on
            say(f"error: {exc}; another worker resumed it, and this one wrote nothing more")
            raise typer.Exit(1) from exc
        except Exception as exc:
            if is_user_error(exc):
                raise
            failed_run(exc, as_json)
        keys = ("batch_id", "request_ids", "model_name", "model_version", "data_version",
                "gate", "rung", "metrics")
        batches = result.get("batches") or [result]
        out = {**{k: result.get(k) for k in keys}, "rejected": result.get("rejected"),
               "timings": result.get("timings"), "promoted": result.get("promoted")}
        if len(batches) > 1:  # the last batch above; every batch here
            out["batches"] = [{k: b.get(k) for k in keys if k != "metrics"} for b in batches]
        emit(out, as_json, lambda r: "\n".join(
            f"batch {b['batch_id']}: requests {b['request_ids']} → {b['model_name']} "
            f"v{b['model_version']} (data {b['data_version']}), gate {b['gate']}"
            for b in r.get("batches") or [r]))
        if late is not None:
            say(f"error: {late}")
        if late is not None or any(b.get("gate") == "failed" for b in batches):
            raise typer.Exit(1)


def failed_run(exc: Exception, as_json: bool) -> NoReturn:
    """A batch that raised: its batch and requests are recorded as failed (the flow's log
    above holds the traceback); one line here, and `{"error"}` on stdout for --json."""
    from forgetflow.pipeline.lease import error_line

    message = (f"the batch run failed: {error_line(exc)} (the batch and its requests are "
               "recorded as failed: `forgetflow request list`)")
    if as_json:
        emit({"error": message}, True)
    say(f"error: {message}")
    raise typer.Exit(1) from exc


def promote(version: str = typer.Option(None, help="version to promote (default: challenger)"),
            model: str = typer.Option(None, help="registered model (default: params)"),
            params: Path = PARAMS, as_json: bool = JSON) -> None:
    """Flow `promote`: move champion to a gate-passed version, or refuse clearly."""
    with user_errors():
        check_stack(s3=False)
        from flows.promote import promote_flow
        from forgetflow.adapters.registry import Registry
        from forgetflow.adapters.workspace import Workspace
        from forgetflow.core.params import load_params
        from forgetflow.pipeline.promotion import check_promotable

        name = model or load_params(params).registry.model_name
        check_promotable(Registry(Workspace.from_env()), name, version)  # refuse before Prefect
        result = promote_flow(name, version, str(params) if params else None)
        emit(result, as_json, lambda r: f"{r['model_name']} champion: "
                                        f"v{r['previous_champion'] or '-'} → v{r['champion']}")


def serve(params: Path = PARAMS) -> None:
    """Serve the deployments: cron batch, UI-triggered request, promotion."""
    with user_errors():
        from flows.deployments import serve_all

        serve_all(str(params) if params else None)


def demo(params: Path = PARAMS,
         source: str = typer.Option(None, help="override params data.source, e.g. "
                                    "folder:/path/to/images or s3://bucket/prefix")) -> None:
    """prepare → train → three requests → one batch → promote → lineage of the champion."""
    with user_errors():
        check_stack()
        from forgetflow.cli.demo import run_demo

        run_demo(str(params) if params else None, source)


def register(app: typer.Typer, request_app: typer.Typer) -> None:
    request_app.command("submit")(submit)
    request_app.command("list")(list_requests)
    request_app.command("show")(show)
    request_app.command("withdraw")(withdraw)
    for name, fn in (("process", process), ("promote", promote), ("serve", serve),
                     ("demo", demo)):
        app.command(name)(fn)
