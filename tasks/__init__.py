"""Prefect tasks: thin typed wrappers over forgetflow's core functions and adapters.

Retries, caching and concurrency are declared here and nowhere else:
- `GPU_TAG` marks compute-bound tasks (a tag concurrency limit caps them per device);
- `DVC_TAG` marks data-registry writers (limit 1; a file lock serializes them regardless);
- results are not cached or persisted: inputs are tensors and models, and a deletion batch
  must never be served from a cache.
"""

GPU_TAG = "forgetflow-gpu"
DVC_TAG = "forgetflow-dvc"


def unless_lease_lost(task: object, task_run: object, state: object) -> bool:
    """Prefect retry condition: retry a failed write, but never one refused because the
    batch's lease is gone (another worker owns the batch now)."""
    from forgetflow.adapters.ledger_batches import LeaseLost

    try:
        state.result()  # type: ignore[attr-defined]
    except LeaseLost:
        return False
    except Exception:
        return True
    return True
