"""Behaviour of `dm` on the small ResNet (a one-layer head over BatchNorm convolutions), on a
tiny real Fashion-MNIST slice: the class goes, the other classes hold, the change lives in the
feature layers (not only the head), and the relearning attack of forgetflow.core.attacks brings
it back at once only where the head alone changed, and no faster on dm than on Retrain."""

from __future__ import annotations

import pytest
import torch

from forgetflow.core.attacks import RelearnConfig, relearn_curve
from forgetflow.core.data.tensors import DataBundle, ImageSet
from forgetflow.core.depth_gate import class_depth
from forgetflow.core.metrics import accuracy, predict_logits
from forgetflow.core.params import GateParams
from forgetflow.core.scenarios import CLASS, ForgetTarget
from forgetflow.core.training import TrainConfig, spec_for, train_model
from forgetflow.core.unlearn import UnlearnTask, create_unlearner

pytestmark = pytest.mark.slow  # trains two ResNet-8s (~40 s on a quiet core)

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
    retrain, _ = train_model(bundle.train.where(~mask), spec, RECIPE, progress=False)
    target = ForgetTarget(CLASS, bundle.train.where(mask), bundle.third_party, K)
    task = UnlearnTask(original, spec, RECIPE, target, bundle.train.where(~mask))
    unlearner = create_unlearner("dm")
    return bundle, task, retrain, unlearner(task), unlearner.report


def test_dm_on_resnet8_drops_a_class_while_the_others_hold(class_setting):
    bundle, task, _, unlearned, _ = class_setting
    labels = bundle.test.labels.numpy()
    others, gone = bundle.test.where(labels != K), bundle.test.where(labels == K)
    assert _acc(task.model, task.forget) > 0.9
    assert _acc(unlearned, task.forget) <= 0.02
    assert _acc(unlearned, gone) <= 0.05  # generalises to unseen samples of the class
    assert _acc(unlearned, others) >= _acc(task.model, others) - 0.04


def test_auto_updates_the_last_stage_and_nothing_below_it(class_setting):
    _, task, _, unlearned, report = class_setting
    assert report["first_trainable_stage"] == 3 and report["trainable_share"] > 0.5
    before, after = task.model.state_dict(), unlearned.state_dict()
    moved = {n for n in before if not torch.equal(before[n], after[n])}
    assert "backbone.layers.2.conv2.weight" in moved, "feature weights must change"
    assert "backbone.head.2.weight" in moved
    assert all(n.startswith(("backbone.layers.2.", "backbone.head.")) for n in moved), moved
    # a class request rebuilds the last stage, its BN statistics included (method.md §14)
    assert report["reset_applied"] and report["stop"] == "rebuilt"
    assert "backbone.layers.2.bn2.running_mean" in moved


def test_dm_passes_the_gates_class_feature_check_where_head_only_cannot(class_setting):
    """The forgotten class must be harder to read from dm's penultimate features than from
    the original's (beyond the other classes' change): the gate's class depth check at its
    shipped threshold. Hiding the class in the head leaves the features exactly as they were."""
    bundle, task, _, unlearned, _ = class_setting
    budget = GateParams().depth
    head_only = create_unlearner("dm", trainable="head")(task)

    def drop(model: torch.nn.Module) -> float:
        return class_depth(model, task.model, K, task.forget, task.retain, bundle.test,
                           budget).value

    assert drop(head_only) == pytest.approx(0.0, abs=1e-9)
    assert drop(unlearned) >= budget.min_class_feature_drop


@pytest.fixture(scope="module")
def restoration(class_setting) -> dict[str, float]:
    """Restoration speed = mean forget accuracy (rows not shown) after the relearning attack
    (default budget: 32 shown, plain SGD, BatchNorm frozen) at 3, 6 and 10 steps, per model.
    The head-only variant is the control: its features still hold the class."""
    bundle, task, retrain, unlearned, _ = class_setting

    def speed(model: torch.nn.Module) -> float:
        curve = relearn_curve(model, task.forget, task.retain, bundle.test, seed=0,
                              cfg=RelearnConfig(), at=(3, 6, 10))
        return sum(r.metric for r in curve) / len(curve)

    head_only = create_unlearner("dm", trainable="head")(task)
    return {"original": speed(task.model), "retrain": speed(retrain), "dm": speed(unlearned),
            "head_only": speed(head_only)}


def test_relearning_tells_head_only_hiding_from_dm_and_retrain(restoration):
    """The class comes back at once where only the head changed, not where the last stage
    did (dm `auto`) nor on Retrain: the attack can tell hiding from forgetting here."""
    r = restoration
    assert r["retrain"] < r["original"] - 0.2, "the attack must leave room to be measured"
    assert r["head_only"] > r["retrain"] + 0.2, r
    assert r["dm"] < r["head_only"] - 0.3, r


def test_relearning_does_not_restore_the_class_faster_than_on_retrain(restoration):
    """The target: dm no faster to relearn than Retrain (within 5 points). Before dm rebuilt the
    last stage for class requests (docs/method.md §14) this was an xfail: under the frozen-BN
    attack dm's class came back first on some CPUs (at 10 steps 0.49 against Retrain's 0.0);
    with the rebuild dm's mean over 3, 6 and 10 steps is 0.003, Retrain's 0.0."""
    assert restoration["dm"] <= restoration["retrain"] + 0.05, restoration
