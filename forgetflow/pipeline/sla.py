"""Due dates: each request is owed within `sla.days` of its submission (GDPR Art. 12(3)).
Overdue requests make the nightly run end failed, so the orchestrator's notifications fire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from forgetflow.adapters.ledger import Ledger, RequestView
from forgetflow.core.params import SlaParams


class OverdueRequests(RuntimeError):
    """Open requests are past their due date; `result` is what the run did before saying so."""

    def __init__(self, request_ids: list[int], result: dict[str, Any] | None = None) -> None:
        super().__init__(f"{len(request_ids)} request(s) past their due date and not done: "
                         f"{request_ids[:20]} (see `forgetflow request list --overdue`)")
        self.request_ids, self.result = request_ids, result


def open_requests(ledger: Ledger, name: str | None = None) -> list[RequestView]:
    return [r for r in ledger.list(model_name=name) if r.open]


def overdue(ledger: Ledger, sla: SlaParams, name: str | None = None,
            now: datetime | None = None) -> list[RequestView]:
    now = now or datetime.now(UTC)
    return [r for r in open_requests(ledger, name) if r.due_at(sla.days) < now]


def at_risk(ledger: Ledger, sla: SlaParams, name: str | None = None,
            now: datetime | None = None) -> list[RequestView]:
    """Open and due within `sla.warn_days`, not yet overdue."""
    now = now or datetime.now(UTC)
    soon = now + timedelta(days=sla.warn_days)
    return [r for r in open_requests(ledger, name) if now <= r.due_at(sla.days) < soon]
