"""Behaviour of `dm` on the small ResNet (a one-layer head over BatchNorm convolutions), on a
tiny real Fashion-MNIST slice: the class goes, the other classes hold, and the change lives in
the feature layers (not only the head)."""

from __future__ import annotations

import pytest
import torch

from forgetflow.core.data.tensors import DataBundle, ImageSet
from forgetflow.core.metrics import accuracy, predict_logits
from forgetflow.core.training import TrainConfig, spec_for, train_model
from forgetflow.core.unlearn import UnlearnTask, create_unlearner

RECIPE = TrainConfig(model="resnet8", epochs=12, batch_size=64, lr=3e-3, seed=0)
K = 1  # trousers: learnt to ~100%, so "gone" is unambiguous


def _acc(model: torch.nn.Module, data: ImageSet) -> float:
    return accuracy(predict_logits(model, data.images), data.labels)


@pytest.fixture(scope="module")
def class_setting(tiny_fmnist_bundle: DataBundle):
    bundle = tiny_fmnist_bundle
    spec = spec_for(bundle, "resnet8")
    mask = bundle.train.labels.numpy() == K
    original, _ = train_model(bundle.train, spec, RECIPE, progress=False)
    task = UnlearnTask(original, spec, RECIPE, bundle.train.where(mask),
                       bundle.train.where(~mask), bundle.third_party, "class", K)
    unlearner = create_unlearner("dm")
    return bundle, task, unlearner(task), unlearner.report


def test_dm_on_resnet8_drops_a_class_while_the_others_hold(class_setting):
    bundle, task, unlearned, _ = class_setting
    labels = bundle.test.labels.numpy()
    others, gone = bundle.test.where(labels != K), bundle.test.where(labels == K)
    assert _acc(task.model, task.forget) > 0.9
    assert _acc(unlearned, task.forget) <= 0.02
    assert _acc(unlearned, gone) <= 0.05  # generalises to unseen samples of the class
    assert _acc(unlearned, others) >= _acc(task.model, others) - 0.04


def test_auto_updates_the_last_stage_and_nothing_below_it(class_setting):
    _, task, unlearned, report = class_setting
    assert report["first_trainable_stage"] == 3 and report["trainable_share"] > 0.5
    before, after = task.model.state_dict(), unlearned.state_dict()
    moved = {n for n in before if not torch.equal(before[n], after[n])}
    assert "backbone.layers.2.conv2.weight" in moved, "feature weights must change"
    assert "backbone.head.2.weight" in moved
    assert all(n.startswith(("backbone.layers.2.", "backbone.head.")) for n in moved), moved
    assert not any("running_" in n for n in moved), "BN statistics stay the original's"
