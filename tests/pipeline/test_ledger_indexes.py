"""The ledger's hot queries (claiming, resuming, closing a batch) use indexes on SQLite and
PostgreSQL: EXPLAIN names the index. PostgreSQL is told to avoid sequential scans, since on
tiny tables it would rightly prefer one; the plan then shows whether an index can serve it.
(Which index the planner picks is its business; that none is a full table scan is ours.)"""

from __future__ import annotations

from sqlalchemy import text

from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.ledger_batches import hot_queries


def plans(ledger: Ledger, prefix: str, setup: str | None = None) -> dict[str, str]:
    out = {}
    with ledger.engine.connect() as conn:
        if setup:
            conn.execute(text(setup))
        for name, query in hot_queries().items():
            sql = str(query.compile(ledger.engine, compile_kwargs={"literal_binds": True}))
            out[name] = "\n".join(str(r) for r in conn.execute(text(f"{prefix} {sql}")))
    return out


def test_sqlite_plans_use_the_indexes(tmp_path) -> None:
    found = plans(Ledger(f"sqlite:///{tmp_path / 'ledger.db'}"), "EXPLAIN QUERY PLAN")
    for name, plan in found.items():
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (name, plan)
        assert "SCAN deletion_requests" not in plan and "SCAN batches" not in plan, plan


def test_postgresql_plans_use_the_indexes(pg_database_factory) -> None:
    ledger = Ledger(pg_database_factory("ffexplain"))
    found = plans(ledger, "EXPLAIN", "SET enable_seqscan = off")
    for name, plan in found.items():
        assert "Index" in plan and "Seq Scan" not in plan, (name, plan)
    ledger.close()
