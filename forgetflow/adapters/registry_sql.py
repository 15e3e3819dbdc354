"""Read-only answers from MLflow's SQL store, for the quick CLI verbs.

`import mlflow` alone costs 1-2 s; `status` and `request submit` only need to know whether a
model exists and which versions carry the champion/challenger aliases. When the tracking URI is
a SQL database these come from MLflow's `registered_models` and `registered_model_aliases`
tables (stable across MLflow 2.x/3.x); otherwise, or when the store is not initialised yet,
every function returns None and callers ask the MLflow client.
"""

from __future__ import annotations

from typing import Any

SQL_SCHEMES = ("sqlite:", "postgresql", "mysql", "mssql")


def _query(uri: str, sql: str, args: dict[str, Any]) -> list[tuple] | None:
    if not uri.startswith(SQL_SCHEMES):
        return None
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    if uri.startswith("sqlite:///"):
        from pathlib import Path

        if not Path(uri[len("sqlite:///"):]).exists():
            return []  # no store yet, so no models; and a read never creates one
    engine = create_engine(uri)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), args)]
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def model_exists(uri: str, name: str) -> bool | None:
    rows = _query(uri, "SELECT 1 FROM registered_models WHERE name = :n", {"n": name})
    return None if rows is None else bool(rows)


def aliases(uri: str, name: str) -> dict[str, str] | None:
    """alias → version number (as a string) of one registered model."""
    rows = _query(uri, "SELECT alias, version FROM registered_model_aliases WHERE name = :n",
                  {"n": name})
    return None if rows is None else {str(a): str(v) for a, v in rows}
