"""Helpers shared by the CLI modules: output discipline and error handling."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

JSON = typer.Option(False, "--json", help="machine-readable output on stdout")
PARAMS = typer.Option(None, "--params", help="params.yaml (default: ./params.yaml)")


def runtime_env() -> None:
    """Defaults that keep every system inside the workspace and off the network."""
    from forgetflow.adapters.workspace import Workspace

    ws = Workspace.from_env()
    if "PREFECT_HOME" not in os.environ:
        ws.prefect_home.mkdir(parents=True, exist_ok=True)
    for key, value in {
        "PREFECT_HOME": str(ws.prefect_home),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1", "GIT_PYTHON_REFRESH": "quiet",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }.items():
        os.environ.setdefault(key, value)


def check_stack(s3: bool = True) -> None:
    """Fail fast, before anything is written, when a configured service is unusable."""
    from forgetflow.adapters.stack import check_stack as check
    from forgetflow.adapters.workspace import Workspace

    check(Workspace.from_env(), s3=s3)


def set_nproc(nproc: int) -> None:
    """`--nproc N`: every training in this command (base model, Retrain) runs on N torchrun
    processes; ranks never log or register, this process does."""
    if nproc > 1:
        os.environ["FORGETFLOW_NPROC"] = str(nproc)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(payload: Any, as_json: bool, human: Callable[[Any], str] | None = None) -> None:
    if as_json:
        print(json.dumps(payload, indent=2, default=str), flush=True)
    else:
        say(human(payload) if human else json.dumps(payload, indent=2, default=str))


class UserInputError(ValueError):
    """A file or option the user passed cannot be read as given."""


# Errors that mean bad input, by module and class name: a class is looked up only when its
# module is already imported (an exception cannot exist otherwise), so catching them costs no
# imports and ledger verbs stay quick.
KNOWN_ERRORS = (
    ("pydantic", "ValidationError"), ("forgetflow.adapters.datarepo", "DataRepoError"),
    ("forgetflow.core.data.manifest", "ManifestError"),
    ("forgetflow.core.data.sources", "DataSourceError"),
    ("forgetflow.core.forget", "ForgetSetError"), ("forgetflow.adapters.ledger", "LedgerError"),
    ("forgetflow.pipeline.submission", "SubmissionError"),
    ("forgetflow.adapters.registry", "RegistryError"),
    ("forgetflow.core.triggers", "TriggerError"), ("forgetflow.adapters.stack", "StackError"),
    ("forgetflow.core.params", "ParamsError"),  # also raised by pipeline.settings
    ("forgetflow.pipeline.taint", "BatchOpen"),
)


def is_user_error(exc: BaseException) -> bool:
    if isinstance(exc, UserInputError | FileNotFoundError | UnicodeDecodeError):
        return True
    for module, name in KNOWN_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return True
    return False


@contextmanager
def user_errors() -> Iterator[None]:
    """Known bad input becomes `error: …` on stderr and exit code 2, without a traceback."""
    try:
        runtime_env()
        yield
    except Exception as exc:
        if not is_user_error(exc):
            raise
        if isinstance(exc, UnicodeDecodeError):
            say(f"error: a file is not UTF-8 text ({exc.reason} at byte {exc.start})")
        else:
            say(f"error: {one_line(exc)}")
        raise typer.Exit(2) from exc


def one_line(exc: BaseException) -> str:
    """The error as one line: a pydantic ValidationError becomes `invalid <model>: field:
    message; ...` (its default text spans lines and carries documentation URLs)."""
    validation = getattr(sys.modules.get("pydantic"), "ValidationError", None)
    if isinstance(validation, type) and isinstance(exc, validation):
        parts = [f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}"
                 for e in exc.errors(include_url=False)]
        return f"invalid {exc.title}: " + "; ".join(parts)
    return str(exc)
