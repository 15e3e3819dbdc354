"""Where `dm` updates (docs/method.md §4): the network is a chain of stages; dm freezes a
prefix, caches its activations once, and fine-tunes the suffix (always including the head).

`trainable`: "auto" (default), "head", "all", or "stages:N" (the last N feature stages + head).
"auto" picks the shortest suffix of stages that holds at least half of the weights: on the
reference CNN that is the head (95% of the weights), on a ResNet the last stage + head (ResNet-8:
74%, ResNet-18: 75%). The suffix runs with BatchNorm in eval mode (running statistics frozen,
affine weights trainable), so the prefix's activations are an exact cache and each step's output
does not depend on which samples share its batch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from forgetflow.core.models import Classifier
from forgetflow.core.unlearn.common import top_gradient_masks

AUTO_WEIGHT_SHARE = 0.5


def check_trainable(value: str) -> str:
    """Validate a `trainable` setting up front (a bad one fails at create time, not mid-run)."""
    if value in ("auto", "head", "all"):
        return value
    if value.startswith("stages:") and value[7:].isdigit() and int(value[7:]) >= 1:
        return value
    raise ValueError(f"trainable must be 'auto', 'head', 'all' or 'stages:N' (N >= 1), "
                     f"got {value!r}")


def _size(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def first_trainable_stage(model: Classifier, trainable: str) -> int:
    """Index of the first stage dm updates; stages before it are frozen and cached."""
    stages = model.stages()
    head = len(stages) - 1
    if trainable == "head":
        return head
    if trainable == "all":
        return 0
    if trainable.startswith("stages:"):
        return max(0, head - int(trainable[7:]))
    sizes = [_size(s) for s in stages]
    total, held = sum(sizes), 0
    for i in range(head, -1, -1):
        held += sizes[i]
        if held >= AUTO_WEIGHT_SHARE * total:
            return i
    return 0


class Split:
    """A model cut at stage `start`: a frozen `prefix` (normalize + stages[:start]; None when
    everything trains, then the pools stay uint8 images) and the `suffix` that maps the
    prefix's output to logits. Both share the model's modules."""

    def __init__(self, model: Classifier, start: int) -> None:
        stages = model.stages()
        self.model, self.start = model, start
        self.prefix = nn.Sequential(model.normalize, *stages[:start]).eval() if start else None
        suffix = nn.Sequential(*stages[start:]) if start else nn.Sequential(
            model.normalize, *stages)
        self.suffix = suffix.eval()  # a new container is in train mode, which would spread

    def names(self) -> list[str]:
        """Parameter names (in the model's state dict) that the suffix updates."""
        ids = {id(p) for p in self.suffix.parameters()}
        return [n for n, p in self.model.named_parameters() if id(p) in ids]

    def share(self) -> float:
        """Fraction of the model's weights that the suffix holds."""
        return _size(self.suffix) / max(1, _size(self.model))


def trainable_copy(original: Classifier, start: int, bn_affine: bool = True) -> Split:
    """A working copy of the original whose suffix alone requires gradients, BN in eval mode:
    its running statistics normalise training steps too and never move (with `bn_affine`
    False, BN's scale and shift stay the original's as well)."""
    work = copy.deepcopy(original).eval()
    for p in work.parameters():
        p.requires_grad_(False)
    split = Split(work, start)
    for m in split.suffix.modules():
        if bn_affine or not isinstance(m, nn.modules.batchnorm._BatchNorm):
            for p in m.parameters(recurse=False):
                p.requires_grad_(True)
    return split


def release(split: Split) -> Classifier:
    """The result as callers expect it: every parameter trainable again, eval mode, CPU."""
    model = split.model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return model.cpu()


@torch.no_grad()
def perturb(net: nn.Module, scale: float, seed: int) -> None:
    """Add seeded Gaussian noise to every trainable weight matrix / kernel of `net`, `scale`
    times that tensor's RMS (biases and BatchNorm stay): dm runs from one original then
    start apart, as Retrains do, and the match, replay and anchor terms pull each back to a
    model of its own (docs/method.md §12)."""
    if scale <= 0.0:
        return
    gen = torch.Generator().manual_seed(seed)
    for p in net.parameters():
        if p.requires_grad and p.dim() > 1:
            noise = torch.randn(p.shape, generator=gen).to(p.device, p.dtype)
            p.add_(noise * scale * p.pow(2).mean().sqrt())


def saliency_masks(net: nn.Module, forget_loss: Callable[[], torch.Tensor],
                   share: float) -> list[tuple[nn.Parameter, torch.Tensor]]:
    """The `share` of `net`'s trainable weights with the largest |d forget_loss / d w|, ranked
    over all of them at once (docs/method.md §10): the weights the forget objective needs most.
    Masks are 0/1 tensors shaped like their parameter; share 1 keeps everything (no masks)."""
    if share >= 1.0:
        return []
    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    net.zero_grad(set_to_none=True)
    forget_loss().backward()
    keep = max(1, int(share * sum(p.numel() for _, p in named)))
    masks = top_gradient_masks(named, keep)
    net.zero_grad(set_to_none=True)
    return [(p, masks[n]) for n, p in named]


__all__ = ["AUTO_WEIGHT_SHARE", "Split", "check_trainable", "first_trainable_stage", "perturb",
           "release", "saliency_masks", "trainable_copy"]
