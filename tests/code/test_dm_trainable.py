"""Code tier: which stages `dm` updates (trainable="auto" and friends) and the exactness of the
frozen-prefix cache it builds on."""

from __future__ import annotations

import pytest
import torch

from forgetflow.core.models import build_model
from forgetflow.core.unlearn import create_unlearner
from forgetflow.core.unlearn.dm_trainable import (
    Split,
    check_trainable,
    first_trainable_stage,
    perturb,
    saliency_masks,
    trainable_copy,
)


def model(name: str):
    return build_model(name, 1, 10, 28, [0.3], [0.2]).eval()


@pytest.mark.parametrize(("name", "stage", "first_param"), [
    ("cnn", 1, "backbone.head.1.weight"),           # the head holds 95% of the weights
    ("resnet8", 3, "backbone.layers.2.conv1.weight"),   # last stage + head: 75%
    ("resnet18", 4, "backbone.layers.6.conv1.weight"),  # layer4 (two blocks) + head: 75%
])
def test_auto_updates_the_shortest_suffix_holding_half_the_weights(name, stage, first_param):
    net = model(name)
    assert first_trainable_stage(net, "auto") == stage
    split = Split(net, stage)
    assert split.names()[0] == first_param
    assert split.share() >= 0.5
    shorter = Split(net, stage + 1)
    assert shorter.share() < 0.5


def test_explicit_settings_and_their_validation():
    net = model("resnet8")  # stages: stem, 3 blocks, head
    assert first_trainable_stage(net, "head") == 4
    assert first_trainable_stage(net, "stages:1") == 3
    assert first_trainable_stage(net, "stages:2") == 2
    assert first_trainable_stage(net, "stages:9") == 0
    assert first_trainable_stage(net, "all") == 0
    for bad in ("stages:0", "stages:x", "last", ""):
        with pytest.raises(ValueError, match="trainable must be"):
            check_trainable(bad)
    with pytest.raises(ValueError, match="trainable must be"):
        create_unlearner("dm", trainable="layer4")


@pytest.mark.parametrize("start", [0, 1, 2, 3, 4])
def test_cached_prefix_then_suffix_is_exactly_the_model(start):
    net = model("resnet8")
    with torch.no_grad():  # give BN non-trivial running statistics
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.rand(5, 1, 28, 28)
    split = Split(net, start)
    with torch.no_grad():
        h = x if split.prefix is None else split.prefix(x)
        assert torch.equal(split.suffix(h), net(x))


def test_trainable_copy_freezes_the_prefix_and_keeps_bn_in_eval_mode():
    net = model("resnet8")
    work = trainable_copy(net, 3)
    grads = {n for n, p in work.model.named_parameters() if p.requires_grad}
    assert grads == set(work.names()) and all(n.startswith(("backbone.layers.2",
                                                             "backbone.head")) for n in grads)
    assert not work.model.training
    assert all(p.requires_grad for p in net.parameters()), "the original is untouched"


def test_saliency_masks_keep_the_weights_the_forget_loss_moves_most():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    x = torch.randn(32, 6)

    def loss():
        return net(x).logsumexp(1).mean()

    loss().backward()
    grads = torch.cat([p.grad.abs().flatten() for p in net.parameters()])
    net.zero_grad(set_to_none=True)
    masks = saliency_masks(net, loss, 0.25)
    kept = torch.cat([m.flatten() for _, m in masks])
    assert len(masks) == len(list(net.parameters()))
    assert int(kept.sum()) == int(0.25 * grads.numel())  # no ties among random gradients
    assert grads[kept.bool()].min() >= grads[~kept.bool()].max()
    assert all(p.grad is None for p in net.parameters()), "the probe gradient is cleared"
    assert saliency_masks(net, loss, 1.0) == []


@pytest.mark.parametrize("share", [0.0, -0.1, 1.5])
def test_dm_rejects_a_saliency_share_outside_0_1(share):
    with pytest.raises(ValueError, match="saliency must be in"):
        create_unlearner("dm", saliency=share)


def test_perturb_moves_weight_tensors_only_reproducibly_by_seed() -> None:
    """dm's start noise (`perturb`): weight matrices and kernels of the updated part move by
    about `scale` x their RMS, biases and BatchNorm stay; the same seed gives the same noise,
    another seed other noise; scale 0 changes nothing."""
    net = model("resnet8")

    def moved(scale: float, seed: int) -> tuple[Split, dict[str, torch.Tensor]]:
        split = trainable_copy(net, 3)
        perturb(split.suffix, scale, seed)
        return split, dict(split.suffix.named_parameters())

    base = dict(trainable_copy(net, 3).suffix.named_parameters())
    _, same = moved(0.0, 1)
    assert all(torch.equal(same[n], p) for n, p in base.items())
    _, a = moved(0.1, 1)
    _, b = moved(0.1, 1)
    _, c = moved(0.1, 2)
    for name, p in base.items():
        if p.dim() > 1:
            delta = a[name] - p
            rms = p.pow(2).mean().sqrt()
            assert 0.05 * rms < delta.pow(2).mean().sqrt() < 0.2 * rms, name
            assert torch.equal(a[name], b[name]) and not torch.equal(a[name], c[name])
        else:
            assert torch.equal(a[name], p), name
    with pytest.raises(ValueError, match="perturb"):
        create_unlearner("dm", perturb=1.5)
