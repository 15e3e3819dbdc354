"""Adapters: the only modules that touch the ledger DB, MLflow, DVC and the workspace."""
