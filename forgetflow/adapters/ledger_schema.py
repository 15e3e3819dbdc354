"""SQLAlchemy tables of the request ledger. Changes here need an Alembic revision in
forgetflow/adapters/migrations/versions (tests compare the two)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# unlearned: a gate-passed version without the request's rows is registered; done: every
# serving alias points at a version built without them (the receipt is signed then)
STATUSES = ("pending", "processing", "unlearned", "done", "rejected", "failed")
TRANSITIONS: dict[str, set[str]] = {
    "pending": {"processing", "rejected"},
    "processing": {"unlearned", "failed", "rejected"},
    "unlearned": {"done"},
    "done": set(), "rejected": set(), "failed": set(),
}


class LedgerError(ValueError):
    """A request id is unknown, or a status change is not allowed."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class RequestRow(Base):
    """One deletion request; samples' ids live in RequestSampleRow, one row per id."""

    __tablename__ = "deletion_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    model_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    reason: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(32))
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id"), index=True)
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    samples: Mapped[list[RequestSampleRow]] = relationship(
        back_populates="request", cascade="all, delete-orphan", lazy="raise")

    # claiming reads the oldest pending requests of one model
    __table_args__ = (Index("ix_requests_model_status_id", "model_name", "status", "id"),)


class RequestSampleRow(Base):
    """Sample ids of a `samples` request: a child table keeps thousands of ids queryable."""

    __tablename__ = "request_sample_ids"

    request_id: Mapped[int] = mapped_column(ForeignKey("deletion_requests.id"), primary_key=True)
    sample_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    request: Mapped[RequestRow] = relationship(back_populates="samples")


class BatchRow(Base):
    """One processing batch: what was decided (gate, escalations) and what it produced."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="processing")
    request_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    parent_version: Mapped[str | None] = mapped_column(String(32))
    model_version: Mapped[str | None] = mapped_column(String(32))
    parent_data_version: Mapped[str | None] = mapped_column(String(64))
    data_version: Mapped[str | None] = mapped_column(String(64))
    gate: Mapped[str | None] = mapped_column(String(16))
    decisions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # at most one live batch per model: a second claimer fails to insert, so requests
        # submitted while a batch runs wait for the next one
        Index("uq_batches_one_processing_per_model", "model_name", unique=True,
              sqlite_where=text("status = 'processing'"),
              postgresql_where=text("status = 'processing'")),
        Index("ix_batches_model_status_lease", "model_name", "status", "lease_expires_at"),
    )


metadata = Base.metadata
