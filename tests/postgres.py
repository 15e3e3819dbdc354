"""Real PostgreSQL databases for tests: one fresh database per test session, dropped after.

The server is the machine's own (127.0.0.1:5432, trust auth, user postgres; .ci/run starts
Debian's postgresql where nothing listens). `FORGETFLOW_TEST_PG` overrides the admin URL.
A missing server FAILS the tests that ask for it (never skips).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("FORGETFLOW_TEST_PG", ADMIN_URL)


def _connect():
    import psycopg

    try:
        return psycopg.connect(admin_url(), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {admin_url()} (FORGETFLOW_TEST_PG): {exc}",
                    pytrace=False)


def create_database(prefix: str = "fftest") -> str:
    """Create an empty database and return its SQLAlchemy URL (psycopg 3 driver)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with _connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url().rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with _connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database_factory() -> Iterator:
    """Call it to get a fresh database URL; every database made is dropped at session end."""
    made: list[str] = []

    def make(prefix: str = "fftest") -> str:
        url = create_database(prefix)
        made.append(url)
        return url

    yield make
    for url in made:
        drop_database(url)


@pytest.fixture(scope="session")
def pg_url(pg_database_factory) -> str:
    """One fresh database for the whole test session."""
    return pg_database_factory()
