"""The batch-figures task: plots for people, logged to the batch's MLflow run."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from forgetflow.core.data.tensors import DataBundle
from forgetflow.core.models import Classifier
from forgetflow.pipeline.batch import Stage
from tasks import GPU_TAG


@task(name="batch-figures", tags=[GPU_TAG], cache_policy=NO_CACHE, persist_result=False)
def batch_figures(run_id: str, parent: Classifier, model: Classifier, stages: list[Stage],
                  bundle: DataBundle, forgotten: list[int],
                  checks: list[dict] | None = None) -> str:
    """The markdown section linking the figures. A plotting error is reported in the artifact
    and the log, never fails a deletion batch whose model is already registered."""
    from forgetflow.report.batch_figures import publish_batch_figures

    try:
        return publish_batch_figures(run_id, parent, model, stages, bundle, forgotten, checks)
    except Exception as exc:  # noqa: BLE001 (figures are a view; the batch stands)
        get_run_logger().warning("batch figures not produced: %r", exc)
        return f"\n## Figures\n\nnot produced: `{exc!r}`\n"
