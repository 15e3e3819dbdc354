"""Cheap behavioural checks of the baselines on sklearn digits: Retrain's model never saw the
forgotten class, and the forgetting baselines remove a class while the others hold."""

from __future__ import annotations

import pytest
import torch

from forgetflow.core.data.tensors import DataBundle, ImageSet
from forgetflow.core.metrics import accuracy, predict_logits
from forgetflow.core.scenarios import CLASS, ForgetTarget
from forgetflow.core.training import TrainConfig, spec_for, train_model
from forgetflow.core.unlearn import UnlearnTask, create_unlearner

RECIPE = TrainConfig(epochs=8, batch_size=64, lr=3e-3, seed=0)
FORGET_CLASS = 3


def _acc(model: torch.nn.Module, data: ImageSet) -> float:
    return accuracy(predict_logits(model, data.images), data.labels)


@pytest.fixture(scope="module")
def class_task(digits_bundle: DataBundle) -> UnlearnTask:
    spec = spec_for(digits_bundle, "cnn")
    model, _ = train_model(digits_bundle.train, spec, RECIPE, progress=False)
    forget = digits_bundle.train.labels.numpy() == FORGET_CLASS
    target = ForgetTarget(CLASS, digits_bundle.train.where(forget), digits_bundle.third_party,
                          forget_class=FORGET_CLASS)
    return UnlearnTask(model, spec, RECIPE, target, digits_bundle.train.where(~forget))


def test_class_retrain_never_predicts_the_forgotten_class(class_task: UnlearnTask,
                                                          digits_bundle: DataBundle) -> None:
    task = class_task
    assert _acc(task.model, task.forget) > 0.9
    retrained = create_unlearner("retrain")(task)
    assert _acc(retrained, task.forget) <= 0.02
    test = digits_bundle.test
    unseen = test.where(test.labels.numpy() == FORGET_CLASS)
    assert _acc(retrained, unseen) <= 0.02
    assert _acc(retrained, task.retain) >= 0.9


@pytest.mark.parametrize("name, cfg", [
    ("random_label", {"epochs": 4.0}),
    ("salun", {"epochs": 4.0}),
    ("neggrad_plus", {"epochs": 4.0}),
    # at the paper's lr (5e-4, the default) SCRUB does not remove a digits class in 3 epochs
    # (a finding reported in BENCHMARKS.md); the behaviour is checked at a 10x larger lr
    ("scrub", {"epochs": 3.0, "msteps": 2, "lr": 5e-3, "kl_cap": 0.5}),
])
def test_forgetting_baselines_remove_a_class_and_keep_the_rest(
    name: str, cfg: dict[str, object], class_task: UnlearnTask, digits_bundle: DataBundle
) -> None:
    task = class_task
    out = create_unlearner(name, **cfg)(task)
    test = digits_bundle.test
    others = test.where(test.labels.numpy() != FORGET_CLASS)
    assert _acc(out, task.forget) <= 0.2, "the class is still recognised"
    assert _acc(out, task.retain) >= _acc(task.model, task.retain) - 0.1
    assert _acc(out, others) >= _acc(task.model, others) - 0.1


def test_finetune_keeps_utility(class_task: UnlearnTask, digits_bundle: DataBundle) -> None:
    out = create_unlearner("finetune", epochs=1.0)(class_task)
    assert _acc(out, digits_bundle.test) >= _acc(class_task.model, digits_bundle.test) - 0.05
