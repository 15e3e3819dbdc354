"""The production gate's depth checks on tiny real Fashion-MNIST: doing nothing (`identity`)
and hiding a class (`logit_mask`) fail with the depth check named; Retrain and dm pass.
Thresholds are the shipped defaults (params.yaml `gate.depth`)."""

from __future__ import annotations

import numpy as np
import pytest

from forgetflow.core.data.tensors import DataBundle
from forgetflow.core.params import DepthGateParams, GateParams
from forgetflow.core.scenarios import scenario_named
from forgetflow.core.training import TrainConfig, spec_for, train_model
from forgetflow.core.unlearn import UnlearnTask, create_unlearner
from forgetflow.pipeline.batch import Stage
from forgetflow.pipeline.gate import run_gate

RECIPE = TrainConfig(epochs=12, batch_size=64, lr=3e-3, seed=0)
# output checks as the shipped gate, the test-accuracy allowance widened for 2.7k-row models;
# the tiny bundle has fewer unseen rows than the shipped min_rows (400, the size at which the
# relearn check refuses doing nothing on every tuning seed of the full bench), so these fixed
# seeds are judged from 50 rows: the mechanism under test, not its power
GATE = GateParams(max_test_acc_drop=0.05, depth=DepthGateParams(min_rows=50))
CLASS = 4


@pytest.fixture(scope="module")
def original(tiny_fmnist_bundle: DataBundle):
    spec = spec_for(tiny_fmnist_bundle, "cnn")
    return train_model(tiny_fmnist_bundle.train, spec, RECIPE, progress=False)[0], spec


def _mask(bundle: DataBundle, scenario: str) -> np.ndarray:
    if scenario == "class":
        return bundle.train.labels.numpy() == CLASS
    mask = np.zeros(len(bundle.train), dtype=bool)
    mask[np.random.default_rng(1).choice(len(bundle.train), 400, replace=False)] = True
    return mask


@pytest.fixture(scope="module")
def retrained(tiny_fmnist_bundle: DataBundle, original):
    spec = original[1]
    return {sc: train_model(tiny_fmnist_bundle.train.where(~_mask(tiny_fmnist_bundle, sc)),
                            spec, RECIPE, progress=False)[0] for sc in ("samples", "class")}


def _gate(bundle: DataBundle, original, retrained, method: str, scenario: str):
    model, spec = original
    mask = _mask(bundle, scenario)
    forget, retain = bundle.train.where(mask), bundle.train.where(~mask)
    k = CLASS if scenario == "class" else None
    target = scenario_named(scenario).target(forget, bundle.third_party, k)
    if method == "retrain":
        unlearned = retrained[scenario]
    else:
        unlearned = create_unlearner(method)(UnlearnTask(model, spec, RECIPE, target, retain))
    stage = Stage(scenario, target)
    # the tiny bundle's holdout has ~15 images a class: the reference pool joins it as unseen
    return run_gate(unlearned, model, [stage], retain, bundle.test, bundle.third_party,
                    [k] if k is not None else [], GATE, seed=0, holdout=None)


@pytest.mark.parametrize(("method", "scenario", "check"), [
    ("identity", "samples", "samples: depth relearn_gap"),
    ("logit_mask", "class", "class: depth class_feature_drop"),
])
def test_doing_nothing_or_masking_fails_the_depth_check(tiny_fmnist_bundle, original,
                                                        retrained, method, scenario, check):
    res = _gate(tiny_fmnist_bundle, original, retrained, method, scenario)
    failed = [c["check"] for c in res.checks if not c["passed"]]
    assert not res.passed and check in failed, res.checks


@pytest.mark.parametrize("method", ["retrain", "dm"])
@pytest.mark.parametrize("scenario", ["samples", "class"])
def test_retrain_and_dm_pass_the_gate(tiny_fmnist_bundle, original, retrained, method,
                                      scenario):
    res = _gate(tiny_fmnist_bundle, original, retrained, method, scenario)
    depth = [c for c in res.checks if c.get("depth")]
    assert depth and all(c["value"] is not None for c in depth)  # the check ran, not skipped
    assert res.passed, res.checks
