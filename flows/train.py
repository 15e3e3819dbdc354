"""Flow `train`: prepare data → train base model → register → alias champion."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from forgetflow.adapters.stack import check_stack
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.params import load_params
from forgetflow.core.training import recipe_of
from forgetflow.pipeline.lineage import base_tags, data_inputs
from tasks.data import load_data, prepare_data
from tasks.models import train
from tasks.registry import register, set_alias


@flow(name="train", log_prints=False)
def train_flow(params_file: str | None = None, epochs: int | None = None,
               source: str | None = None, allow_source_change: bool = False) -> dict[str, Any]:
    """Runbook: make sure the data registry has a version for params' data section, train the
    recipe on its train split, register the model with lineage, make it the champion."""
    log = get_run_logger()
    check_stack(Workspace.from_env())  # before any data version or run is written
    params = load_params(params_file)
    name = params.registry.model_name
    data = params.data if source is None else params.data.model_copy(update={"source": source})

    version, created = prepare_data(data, allow_source_change)
    log.info("data version %s (%s)", version.tag, "new" if created else "unchanged")
    version, bundle, _ = load_data(version.tag)

    recipe = recipe_of(params.train, epochs)
    model, spec, stats = train(bundle, recipe)
    log.info("trained %s for %d epochs: test acc %.4f", recipe.model, recipe.epochs,
             stats["test_acc"])

    from forgetflow.adapters.datarepo import DataRepo

    inputs = data_inputs(DataRepo(Workspace.from_env()), version, bundle)
    ref = register(name, model, spec, recipe, base_tags(version.tag), stats, inputs)
    set_alias(name, "champion", ref.version)
    log.info("registered %s v%s as champion", name, ref.version)
    return {"model_name": name, "model_version": ref.version, "data_version": version.tag,
            "metrics": stats}
