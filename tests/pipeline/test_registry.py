"""MLflow registry adapter: lineage tags, inputs without ids, aliases, promotion rules."""

from __future__ import annotations

import mlflow
import pytest
import torch

from flows.promote import PromotionRefused, check_promotable
from forgetflow.adapters.registry import TAG, Registry, RegistryError
from forgetflow.adapters.workspace import Workspace
from forgetflow.pipeline.lineage import TAG_KEYS

NAME = "ff-test"


def test_base_version_has_every_tag_and_champion(trained: dict[str, str]) -> None:
    registry = Registry(Workspace.from_env())
    ref = registry.ref(NAME, "champion")
    assert ref.version == "1" and "champion" in ref.aliases
    assert {TAG + k for k in TAG_KEYS} <= set(ref.tags)
    assert ref.tag("kind") == "base" and ref.tag("data_version") == "v1"
    run = mlflow.MlflowClient(trained["MLFLOW_TRACKING_URI"]).get_run(ref.run_id)
    assert run.data.metrics["test_acc"] > 0.5
    inputs = {d.tags[0].value if d.tags else "": d.dataset for d in run.inputs.dataset_inputs}
    assert "train" in inputs and inputs["train"].name == "data-registry@v1:train"
    model, spec, recipe = registry.load(ref)
    assert model(torch.rand(2, 1, 16, 16)).shape == (2, 10)
    assert spec.num_classes == 10 and recipe.epochs == 3


def test_unknown_model_and_alias_are_errors(trained: dict[str, str]) -> None:
    registry = Registry(Workspace.from_env())
    with pytest.raises(RegistryError, match="no registered model"):
        registry.ref("nope", "champion")
    with pytest.raises(RegistryError, match="no version or alias"):
        registry.ref(NAME, "challenger")
    assert registry.alias(NAME, "challenger") is None


def test_promotion_refuses_failed_gate_and_older_data(trained: dict[str, str]) -> None:
    registry = Registry(Workspace.from_env())
    with pytest.raises(PromotionRefused, match="no challenger"):
        check_promotable(registry, NAME, None)
    base = registry.ref(NAME, "1")
    model, spec, recipe = registry.load(base)
    tags = {k: base.tag(k) or "" for k in TAG_KEYS}
    failed = registry.register(NAME, model, spec, recipe,
                               {**tags, "kind": "unlearned", "gate": "failed",
                                "data_version": "v2"}, {}, [])
    with pytest.raises(PromotionRefused, match="did not pass the gate"):
        check_promotable(registry, NAME, failed.version)
    assert check_promotable(registry, NAME, "1") == ("1", "1")


def test_fresh_process_loads_with_workspace_default_uri(trained: dict[str, str]) -> None:
    """Regression: `load` used mlflow's global URI, so a fresh `forgetflow process` without
    MLFLOW_TRACKING_URI could not find the champion in the workspace's own store."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    code = ("from forgetflow.adapters.registry import Registry; "
            "from forgetflow.adapters.workspace import Workspace; "
            "r = Registry(Workspace.from_env()); "
            "print(r.load(r.ref('ff-test', 'champion'))[1].num_classes)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("10")


def test_fenced_writes_leave_nothing_once_the_lease_is_gone(prefect_harness: None,
                                                           trained: dict[str, str]) -> None:
    """The data commit asks its fence under the repo lock, the registration after the upload
    and before the version: a refused one writes no data version, no model version and no
    live run, and Prefect does not retry it."""
    import numpy as np

    from forgetflow.adapters.datarepo import DataRepo
    from forgetflow.adapters.ledger_batches import LeaseLost
    from tasks.registry import register_batch

    asked: list[int] = []

    def gone() -> None:
        asked.append(1)
        raise LeaseLost("batch b-stale: lease lost")

    ws = Workspace.from_env()
    repo, registry = DataRepo(ws), Registry(ws)
    head = repo.version()
    with pytest.raises(LeaseLost):
        from tasks.data import commit_batch_version

        commit_batch_version(head, repo.manifest(head), np.array([repo.manifest(head).ids[0]]),
                             {}, "b-stale", [1], gone)
    assert repo.tags() == [head.tag] and asked == [1]
    base, before = registry.ref(NAME, "1"), [r.version for r in registry.versions(NAME)]
    model, spec, recipe = registry.load(base)
    tags = {**{k: v for k, v in ((t.removeprefix(TAG), base.tags[t]) for t in base.tags
                                 if t.startswith(TAG))}, "batch_id": "b-stale", "kind": "x"}
    with pytest.raises(LeaseLost):
        register_batch(NAME, "b-stale", model, spec, recipe, tags, {"test_acc": 1.0}, [], {},
                       gone)
    assert asked == [1, 1]  # asked once: a lost lease is not retried
    assert [r.version for r in registry.versions(NAME)] == before
    experiment = registry.client.get_experiment_by_name("forgetflow")
    assert registry.client.search_runs([experiment.experiment_id],
                                       f"tags.`{TAG}batch_id` = 'b-stale'") == []
