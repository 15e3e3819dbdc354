"""Prefect tasks: thin typed wrappers over forgetflow's core functions and adapters.

Retries, caching and concurrency are declared here and nowhere else:
- `GPU_TAG` marks compute-bound tasks (a tag concurrency limit caps them per device);
- `DVC_TAG` marks data-registry writers (limit 1; a file lock serializes them regardless);
- results are not cached or persisted: inputs are tensors and models, and a deletion batch
  must never be served from a cache.
"""

GPU_TAG = "forgetflow-gpu"
DVC_TAG = "forgetflow-dvc"
