"""Alembic migrations of the request ledger, applied programmatically by `ledger.migrate`."""
