"""The deletion-request ledger: the only module that talks SQL.

Opening a ledger applies pending Alembic migrations (never `create_all`), so a database made
by an older forgetflow is upgraded in place. Status changes follow
pending → processing → done | rejected | failed and nothing else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, select, update
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from forgetflow.adapters.ledger_batches import BatchBusy, BatchLedger, OpenBatch
from forgetflow.adapters.ledger_schema import (
    STATUSES,
    TRANSITIONS,
    BatchRow,
    LedgerError,
    RequestRow,
    RequestSampleRow,
    utcnow,
)
from forgetflow.adapters.stack import connect_args, redact

if TYPE_CHECKING:
    from alembic.config import Config

    from forgetflow.core.requests import DeletionRequest

MIGRATIONS = Path(__file__).with_name("migrations")
__all__ = ["BatchBusy", "Ledger", "LedgerError", "OpenBatch", "RequestView"]


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything the ledger writes is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_status(status: str | None) -> None:
    """A status filter names one of the ledger's statuses (a typo would list nothing)."""
    if status is not None and status not in STATUSES:
        raise LedgerError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")


@dataclass(frozen=True)
class RequestView:
    """A detached snapshot of one request, safe to pass between tasks and print as JSON."""

    id: int
    kind: str
    payload: dict[str, Any]
    idempotency_key: str | None
    model_name: str
    status: str
    reason: str | None
    model_version: str | None
    batch_id: str | None
    receipt: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: RequestRow) -> RequestView:
        return cls(row.id, row.kind, dict(row.payload), row.idempotency_key, row.model_name,
                   row.status, row.reason, row.model_version, row.batch_id, row.receipt,
                   _aware(row.created_at), _aware(row.updated_at))

    def due_at(self, days: int) -> datetime:
        return self.created_at + timedelta(days=days)

    @property
    def open(self) -> bool:
        """Not yet honoured: anything but done or rejected (a failed request still is owed)."""
        return self.status not in ("done", "rejected")

    def summary(self) -> dict[str, Any]:
        """The `request list --json` row of docs/design.md §9."""
        return {"id": self.id, "kind": self.kind, "status": self.status, "reason": self.reason,
                "model_version": self.model_version}

    def detail(self) -> dict[str, Any]:
        """The `request show --json` object: the summary plus payload, batch and receipt."""
        return {**self.summary(), "payload": self.payload, "model_name": self.model_name,
                "idempotency_key": self.idempotency_key, "batch_id": self.batch_id,
                "receipt": self.receipt, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat()}


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is already there)."""
    if _at_head(engine):
        return
    from alembic import command

    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _at_head(engine: Engine) -> bool:
    """True when the database records exactly the declared head revision(s)."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from forgetflow.adapters.migrations import declared_heads

    try:
        with engine.connect() as conn:
            current = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except SQLAlchemyError:
        return False
    return bool(current) and current == declared_heads()


def _sqlite_foreign_keys(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _on(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute("PRAGMA foreign_keys=ON")
            dbapi_conn.execute("PRAGMA busy_timeout=30000")


class Ledger(BatchLedger):
    """Requests and batches. Every method is one transaction. `Ledger.open(url)` shares one
    instance (engine, migrations done) per URL and process."""

    _open: dict[str, Ledger] = {}

    @classmethod
    def open(cls, url: str) -> Ledger:
        if url not in cls._open:
            cls._open[url] = cls(url)
        return cls._open[url]

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            folder = Path(url[len("sqlite:///"):]).parent
            if url == os.environ.get("FORGETFLOW_DB_URL") and not folder.is_dir():
                # a typo would otherwise make a new, empty ledger: an empty queue, no error
                raise LedgerError(f"FORGETFLOW_DB_URL: the folder {folder} of the SQLite ledger "
                                  "does not exist")
            folder.mkdir(parents=True, exist_ok=True)  # the workspace's own ledger
        try:
            self.engine = create_engine(url, connect_args=connect_args(url))
        except (ArgumentError, NoSuchModuleError) as exc:
            raise LedgerError(f"FORGETFLOW_DB_URL is not a usable database URL "
                              f"({redact(url)}): {exc}") from exc
        _sqlite_foreign_keys(self.engine)
        try:
            migrate(self.engine)
        except OperationalError as exc:
            self.engine.dispose()
            reason = str(exc.orig).strip().splitlines()[0]
            raise LedgerError(f"FORGETFLOW_DB_URL: cannot open the ledger at {redact(url)}: "
                              f"{reason}") from exc
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def _row(self, session: Session, request_id: int) -> RequestRow:
        # an id past the database's 64-bit integers names no request (the driver would raise)
        row = session.get(RequestRow, request_id) if abs(request_id) < 2**63 else None
        if row is None:
            raise LedgerError(f"no deletion request with id {request_id}")
        return row

    def find_by_key(self, key: str) -> RequestView | None:
        with self._session() as s:
            row = s.scalars(select(RequestRow).where(RequestRow.idempotency_key == key)).first()
            return RequestView.of(row) if row else None

    def submit(self, request: DeletionRequest, model_name: str) -> tuple[RequestView, bool]:
        """Store a validated request; (view, created). A repeated idempotency key returns the
        first request and writes nothing; the same key on a different request is refused (a
        retry must not silently drop what a user asked for)."""
        if request.idempotency_key:
            existing = self.find_by_key(request.idempotency_key)
            if existing:
                return self._same_request(existing, request, model_name), False
        row = RequestRow(kind=request.kind, payload=request.payload(),
                         idempotency_key=request.idempotency_key,
                         model_name=request.model_name or model_name, status="pending")
        try:
            with self._session.begin() as s:
                s.add(row)
                s.flush()
                if request.ids:
                    s.execute(RequestSampleRow.__table__.insert(),
                              [{"request_id": row.id, "sample_id": i} for i in request.ids])
        except IntegrityError:
            existing = self.find_by_key(request.idempotency_key or "")
            if existing is None:
                raise
            # a concurrent submit with the same key won the race
            return self._same_request(existing, request, model_name), False
        return RequestView.of(row), True

    def _same_request(self, existing: RequestView, request: DeletionRequest,
                      model_name: str) -> RequestView:
        """`existing` when `request` asks for exactly the same deletion, else LedgerError."""
        asked = json.loads(json.dumps(request.payload()))  # as the JSON column returns it
        same = (existing.kind == request.kind and existing.payload == asked
                and existing.model_name == (request.model_name or model_name)
                and sorted(self.sample_ids(existing.id)) == sorted(request.ids or []))
        if not same:
            raise LedgerError(
                f"idempotency key {request.idempotency_key!r} already names request "
                f"{existing.id} ({existing.kind}, model {existing.model_name}), a different "
                "request: nothing stored; submit this one with a new key")
        return existing

    def get(self, request_id: int) -> RequestView:
        with self._session() as s:
            return RequestView.of(self._row(s, request_id))

    def list(self, status: str | None = None, model_name: str | None = None) -> list[RequestView]:
        query = select(RequestRow).order_by(RequestRow.id)
        check_status(status)
        if status:
            query = query.where(RequestRow.status == status)
        if model_name:
            query = query.where(RequestRow.model_name == model_name)
        with self._session() as s:
            return [RequestView.of(r) for r in s.scalars(query)]

    def subjects_removed(self, model_name: str) -> dict[str, list[int]]:
        """subject → its unlearned or done subject requests: whose rows are out of the data."""
        query = (select(RequestRow.id, RequestRow.payload)
                 .where(RequestRow.model_name == model_name, RequestRow.kind == "subject",
                        RequestRow.status.in_(("unlearned", "done")))
                 .order_by(RequestRow.id))
        out: dict[str, list[int]] = {}
        with self._session() as s:
            for rid, payload in s.execute(query):
                out.setdefault(str((payload or {}).get("subject")), []).append(rid)
        return out

    def sample_ids(self, request_id: int) -> list[str]:
        with self._session() as s:
            query = (select(RequestSampleRow.sample_id)
                     .where(RequestSampleRow.request_id == request_id)
                     .order_by(RequestSampleRow.sample_id))
            return list(s.scalars(query))

    def withdraw(self, request_id: int, reason: str) -> RequestView:
        """A pending request becomes `rejected` with `reason`, in one conditional update, so a
        batch claiming it at the same moment wins cleanly (LedgerError: not pending)."""
        self.get(request_id)  # LedgerError for an unknown id
        with self._session.begin() as s:
            done = s.execute(update(RequestRow).where(
                RequestRow.id == request_id, RequestRow.status == "pending").values(
                status="rejected", reason=reason, completed_at=utcnow())).rowcount
        view = self.get(request_id)
        if not done:
            raise LedgerError(f"request {request_id} is {view.status}: only a pending request "
                              "can be withdrawn (a batch has taken it, or it is closed)")
        return view

    def transition(self, request_ids: Iterable[int], status: str, reason: str | None = None,
                   model_version: str | None = None,
                   receipts: dict[int, dict[str, Any]] | None = None) -> None:
        """Move requests to `status`, all or none, refusing changes TRANSITIONS forbids."""
        with self._session.begin() as s:
            for rid in request_ids:
                row = self._row(s, rid)
                if status not in TRANSITIONS[row.status]:
                    raise LedgerError(f"request {rid}: {row.status} → {status} is not allowed")
                row.status = status
                if reason is not None:  # keep why an earlier step got here
                    row.reason = reason
                if model_version is not None:
                    row.model_version = model_version
                if receipts and rid in receipts:
                    row.receipt = receipts[rid]
                if status in ("done", "rejected", "failed"):
                    row.completed_at = utcnow()

    def last_batch(self, model_name: str | None = None) -> dict[str, Any] | None:
        """The newest batch (of one model), as `batch()` gives it; None before the first."""
        query = select(BatchRow.id).order_by(BatchRow.created_at.desc()).limit(1)
        if model_name:
            query = query.where(BatchRow.model_name == model_name)
        with self._session() as s:
            newest = s.scalars(query).first()
        return self.batch(newest) if newest else None
