"""Prefect flows: train, process_deletions, promote, request_deletion, and their deployments."""
