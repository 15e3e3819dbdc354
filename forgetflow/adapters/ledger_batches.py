"""The batch half of the ledger: claiming requests under a lease, resuming a batch whose lease
expired, and closing a batch with its requests in one transaction.

Safety under concurrency: claiming locks the pending rows it takes (`FOR UPDATE SKIP LOCKED`
on PostgreSQL; SQLite serializes writers with BEGIN IMMEDIATE), and a partial unique index
allows one `processing` batch per model, so two processes never run batches of one model at
once and a request submitted during a batch waits for the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from forgetflow.adapters.ledger_schema import BatchRow, LedgerError, RequestRow, utcnow


class BatchBusy(RuntimeError):
    """Another process holds a live batch of this model."""


class LeaseLost(RuntimeError):
    """Another process took this batch over (this one stalled past its lease, or could not
    renew it): its writes are refused."""


def _fence(batch: BatchRow, owner: str | None) -> None:
    """A write on behalf of `owner` goes through only while it still holds the batch's lease
    (checked inside the writing transaction, so a takeover cannot slip in between)."""
    if owner is not None and (batch.lease_owner != owner or batch.status != "processing"):
        raise LeaseLost(f"batch {batch.id}: lease lost to another process; this worker's "
                        "write was refused")


def _aware(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class OpenBatch:
    """A batch this process now owns: new (just claimed) or resumed after its lease expired."""

    batch_id: str
    model_name: str
    request_ids: list[int]
    resumed: bool
    parent_version: str | None


def pending_query(model_name: str, limit: int) -> Select:
    """The oldest pending requests of a model (index ix_requests_model_status_id)."""
    return (select(RequestRow.id)
            .where(RequestRow.model_name == model_name, RequestRow.status == "pending")
            .order_by(RequestRow.id).limit(limit))


def db_now(s: Session) -> datetime:
    """The database's clock, in UTC: leases are set and expire by it, so a worker whose own
    clock runs ahead cannot take over a live batch, nor one running behind keep a dead one."""
    if s.get_bind().dialect.name == "sqlite":  # text, UTC, to the millisecond
        value = datetime.fromisoformat(s.execute(
            select(func.strftime("%Y-%m-%d %H:%M:%f", "now"))).scalar_one())
    else:
        value = s.execute(select(func.current_timestamp())).scalar_one()
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def expired_query(model_name: str, now: datetime) -> Select:
    """A live batch whose lease ran out (index ix_batches_model_status_lease)."""
    return select(BatchRow).where(BatchRow.model_name == model_name,
                                  BatchRow.status == "processing",
                                  BatchRow.lease_expires_at < now)


def open_in_batch_query(batch_id: str) -> Select:
    """A batch's still-open requests (index ix_deletion_requests_batch_id)."""
    return select(RequestRow).where(RequestRow.batch_id == batch_id,
                                    RequestRow.status == "processing")


def hot_queries(model_name: str = "m", batch_id: str = "b") -> dict[str, Select]:
    """The queries every batch runs, for tests that EXPLAIN them against each backend."""
    return {"pending": pending_query(model_name, 250),
            "expired": expired_query(model_name, utcnow()),
            "open_in_batch": open_in_batch_query(batch_id)}


class BatchLedger:
    """Batch lifecycle methods of `Ledger` (which provides `_session` and `engine`)."""

    _session: sessionmaker[Session]

    def _begin_write(self, s: Session) -> None:
        """SQLite: take the write lock now, so a read-then-write claim cannot interleave."""
        if s.get_bind().dialect.name == "sqlite":
            s.execute(text("BEGIN IMMEDIATE"))

    def claim(self, model_name: str, batch_id: str, owner: str, lease_seconds: float,
              max_requests: int) -> OpenBatch | None:
        """Open a batch with the oldest pending requests of this model (at most
        `max_requests`) under a lease. None: nothing pending. BatchBusy: a live batch of this
        model exists (its requests and any new ones wait)."""
        try:
            with self._session() as s, s.begin():
                self._begin_write(s)
                now = db_now(s)
                ids = list(s.scalars(pending_query(model_name, max_requests)
                                     .with_for_update(skip_locked=True)))
                if not ids:
                    return None
                s.add(BatchRow(id=batch_id, model_name=model_name, request_ids=ids,
                               status="processing", lease_owner=owner,
                               lease_expires_at=now + timedelta(seconds=lease_seconds)))
                s.flush()
                s.execute(update(RequestRow).where(RequestRow.id.in_(ids)).values(
                    status="processing", batch_id=batch_id, updated_at=utcnow()))
        except IntegrityError as exc:
            raise BatchBusy(f"a batch of {model_name} is already running") from exc
        return OpenBatch(batch_id, model_name, ids, False, None)

    def resume_expired(self, model_name: str, owner: str,
                       lease_seconds: float) -> OpenBatch | None:
        """Take over the batch of this model whose lease expired (its process died)."""
        with self._session() as s, s.begin():
            self._begin_write(s)
            now = db_now(s)
            row = s.scalars(expired_query(model_name, now)
                            .with_for_update(skip_locked=True)).first()
            if row is None:
                return None
            row.lease_owner = owner
            row.lease_expires_at = now + timedelta(seconds=lease_seconds)
            return OpenBatch(row.id, model_name, list(row.request_ids), True,
                             row.parent_version)

    def renew(self, batch_id: str, owner: str, lease_seconds: float) -> bool:
        """Heartbeat: extend the lease while this owner still holds it."""
        with self._session() as s, s.begin():
            done = s.execute(update(BatchRow).where(
                BatchRow.id == batch_id, BatchRow.lease_owner == owner,
                BatchRow.status == "processing",
            ).values(lease_expires_at=db_now(s) + timedelta(seconds=lease_seconds)))
            return done.rowcount == 1

    def live_batch(self, model_name: str) -> dict[str, Any] | None:
        """The processing batch of this model, if any (for messages and `status`)."""
        with self._session() as s:
            row = s.scalars(select(BatchRow).where(BatchRow.model_name == model_name,
                                                   BatchRow.status == "processing")).first()
            if row is None:
                return None
            return {"batch_id": row.id, "lease_owner": row.lease_owner,
                    "lease_expires_at": _aware(row.lease_expires_at)}

    def has_work(self, model_name: str) -> bool:
        """Pending requests, or a batch whose lease expired: `process` has something to do."""
        with self._session() as s:
            if s.scalars(pending_query(model_name, 1)).first() is not None:
                return True
            return s.scalars(expired_query(model_name, db_now(s)).limit(1)).first() is not None

    def uncovered(self, model_name: str, data_version_number: int) -> dict[int, str]:
        """Failed requests whose batch already dropped their rows from the data (a gate
        failure, or an error after the data commit), in versions up to this one:
        request id → that batch's data version."""
        with self._session() as s:
            rows = s.execute(select(RequestRow.id, BatchRow.data_version).join(
                BatchRow, RequestRow.batch_id == BatchRow.id).where(
                RequestRow.model_name == model_name, RequestRow.status == "failed",
                BatchRow.data_version.is_not(None)))
            return {rid: tag for rid, tag in rows
                    if int(tag.lstrip("v")) <= data_version_number}

    def fail_batch(self, batch_id: str, reason: str, owner: str | None = None,
                   **fields: Any) -> list[int]:
        """Close a batch that errored: its still-open requests become `failed` with `reason`,
        in the same transaction as the batch row. Returns the failed ids."""
        return self.finish_batch(batch_id, "failed", "failed", reason, None,
                                 fields={"error": reason, **fields}, owner=owner)

    def finish_batch(self, batch_id: str, status: str, request_status: str,
                     reason: str | None, model_version: str | None,
                     receipts: dict[int, dict[str, Any]] | None = None,
                     covered: dict[int, dict[str, Any]] | None = None,
                     fields: dict[str, Any] | None = None,
                     owner: str | None = None) -> list[int]:
        """Record a batch's outcome and move its still-open requests to `request_status`
        (with receipts when given), all in one transaction. `covered`: failed requests of
        earlier batches whose rows this gate-passed version no longer carries (→ receipt or
        None); they take `request_status` too (the only way out of `failed`). Requests already
        closed are left alone, so calling it again changes nothing. `owner`: the worker
        writing; refused with LeaseLost unless it holds the lease."""
        with self._session() as s, s.begin():
            self._begin_write(s)
            batch = s.get(BatchRow, batch_id)
            if batch is None:
                raise LedgerError(f"no batch {batch_id}")
            _fence(batch, owner)
            if batch.status != "processing":
                return []
            rows = list(s.scalars(open_in_batch_query(batch_id)))
            if covered:
                rows += list(s.scalars(select(RequestRow).where(
                    RequestRow.id.in_(list(covered)), RequestRow.status == "failed")))
            for row in rows:
                own = row.batch_id == batch_id
                row.status = request_status
                row.reason = reason if own else f"completed by batch {batch_id}"
                row.completed_at = utcnow()
                if model_version is not None:
                    row.model_version = model_version
                receipt = (receipts or {}).get(row.id) if own else (covered or {}).get(row.id)
                if receipt is not None:
                    row.receipt = receipt
            updates = {**(fields or {}), "status": status, "finished_at": utcnow(),
                       "lease_owner": None, "lease_expires_at": None}
            if model_version is not None:
                updates["model_version"] = model_version
            for key, value in updates.items():
                setattr(batch, key, value)
            return [r.id for r in rows]

    def reject_open(self, reasons: dict[int, str], owner: str | None = None) -> None:
        """Reject requests of a batch that are still open (a rerun repeats nothing)."""
        with self._session() as s, s.begin():
            self._begin_write(s)
            for rid, reason in reasons.items():
                row = s.get(RequestRow, rid)
                if row is not None and row.batch_id is not None:
                    _fence(s.get(BatchRow, row.batch_id), owner)
                if row is not None and row.status == "processing":
                    row.status, row.reason, row.completed_at = "rejected", reason, utcnow()

    def update_batch(self, batch_id: str, owner: str | None = None, **fields: Any) -> None:
        """Record a batch's progress; `owner` as in finish_batch."""
        with self._session() as s, s.begin():
            self._begin_write(s)
            row = s.get(BatchRow, batch_id)
            if row is None:
                raise LedgerError(f"no batch {batch_id}")
            _fence(row, owner)
            for key, value in fields.items():
                setattr(row, key, value)

    def batch(self, batch_id: str) -> dict[str, Any]:
        with self._session() as s:
            row = s.get(BatchRow, batch_id)
            if row is None:
                raise LedgerError(f"no batch {batch_id}")
            return {c.name: getattr(row, c.name) for c in BatchRow.__table__.columns}

    def batches(self, model_name: str | None = None) -> list[dict[str, Any]]:
        query = select(BatchRow.id).order_by(BatchRow.created_at)
        if model_name:
            query = query.where(BatchRow.model_name == model_name)
        with self._session() as s:
            ids = list(s.scalars(query))
        return [self.batch(i) for i in ids]
