"""Multi-process training (torchrun + DDP, gloo on 2 CPU processes) follows the recipe: on a
tiny real slice it produces the single-process model up to float summation order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forgetflow.core.data.tensors import DataBundle, to_float
from forgetflow.core.scenarios import CLASS, ForgetTarget
from forgetflow.core.training import TrainConfig, spec_for, train_model

pytestmark = pytest.mark.slow
RECIPE = TrainConfig(model="cnn", epochs=2, batch_size=64, lr=3e-3, seed=3)


def test_two_gloo_processes_match_one(digits_bundle: DataBundle,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    data = digits_bundle.train.take(np.arange(333))  # odd size: the last batch splits unevenly
    spec = spec_for(digits_bundle, "cnn")
    monkeypatch.setenv("FORGETFLOW_NPROC", "1")
    single, single_stats = train_model(data, spec, RECIPE, progress=False)
    monkeypatch.setenv("FORGETFLOW_NPROC", "2")
    multi, multi_stats = train_model(data, spec, RECIPE, progress=False)

    before = TrainConfig(**{**RECIPE.__dict__, "epochs": 1})
    monkeypatch.setenv("FORGETFLOW_NPROC", "1")
    shorter, _ = train_model(data, spec, before, progress=False)
    for name, weight in single.state_dict().items():
        assert torch.allclose(weight, multi.state_dict()[name], atol=1e-5), name
    moved = max(float((w - shorter.state_dict()[n]).abs().max())
                for n, w in single.state_dict().items())
    assert moved > 1e-3  # the tolerance is far below what training changes
    assert multi_stats["train_loss"] == pytest.approx(single_stats["train_loss"], rel=1e-5)
    assert multi_stats["train_acc_running"] == single_stats["train_acc_running"]
    x = digits_bundle.test.images[:200]
    with torch.no_grad():
        assert torch.equal(single(to_float(x)).argmax(1), multi(to_float(x)).argmax(1))


def test_bad_nproc(digits_bundle: DataBundle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGETFLOW_NPROC", "zero")
    with pytest.raises(ValueError, match="FORGETFLOW_NPROC"):
        train_model(digits_bundle.train.take(np.arange(10)), spec_for(digits_bundle, "cnn"),
                    RECIPE, progress=False)


def test_retrain_unlearner_on_two_processes(digits_bundle: DataBundle,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Retrain (what escalation falls back to) takes the same DDP path under --nproc."""
    from forgetflow.core.unlearn import UnlearnTask, create_unlearner

    train = digits_bundle.train.take(np.arange(300))
    forget_mask = train.labels.numpy() == 1
    spec = spec_for(digits_bundle, "cnn")
    recipe = TrainConfig(model="cnn", epochs=1, batch_size=64, lr=3e-3, seed=5)
    original, _ = train_model(train, spec, recipe, progress=False)
    target = ForgetTarget(CLASS, train.where(forget_mask), digits_bundle.third_party, 1)
    task = UnlearnTask(original, spec, recipe, target, train.where(~forget_mask))
    monkeypatch.setenv("FORGETFLOW_NPROC", "1")
    single = create_unlearner("retrain")(task)
    monkeypatch.setenv("FORGETFLOW_NPROC", "2")
    multi = create_unlearner("retrain")(task)
    for name, weight in single.state_dict().items():
        assert torch.allclose(weight, multi.state_dict()[name], atol=1e-5), name
