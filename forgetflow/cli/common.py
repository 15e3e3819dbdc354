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
    }.items():
        os.environ.setdefault(key, value)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(payload: Any, as_json: bool, human: Callable[[Any], str] | None = None) -> None:
    if as_json:
        print(json.dumps(payload, indent=2, default=str), flush=True)
    else:
        say(human(payload) if human else json.dumps(payload, indent=2, default=str))


@contextmanager
def user_errors() -> Iterator[None]:
    """Known bad input becomes `error: …` on stderr and exit code 2, without a traceback."""
    from pydantic import ValidationError

    from forgetflow.adapters.datarepo import DataRepoError
    from forgetflow.adapters.ledger import LedgerError
    from forgetflow.adapters.registry import RegistryError
    from forgetflow.core.data.manifest import ManifestError
    from forgetflow.core.data.sources import DataSourceError
    from forgetflow.core.forget import ForgetSetError
    from forgetflow.core.triggers import TriggerError
    from forgetflow.pipeline.steps import SubmissionError

    known = (ValidationError, ManifestError, DataSourceError, DataRepoError, ForgetSetError,
             LedgerError, SubmissionError, RegistryError, TriggerError, FileNotFoundError)
    try:
        runtime_env()
        yield
    except known as exc:
        say(f"error: {exc}")
        raise typer.Exit(2) from exc
