"""The relearning attack trains the weights of a BatchNorm ResNet with its normalisation
frozen: every forward pass of the attacked copy runs in eval mode with the original's running
statistics, and the original itself is left untouched."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from forgetflow.core.attacks import RelearnConfig, relearn_curve
from forgetflow.core.data.tensors import ImageSet
from forgetflow.core.models import build_model


def _images(n: int, label: int, seed: int) -> ImageSet:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 28, 28), generator=gen, dtype=torch.uint8)
    return ImageSet(images, torch.full((n,), label), np.array([f"{seed}:{i}" for i in range(n)]))


def test_attack_keeps_batchnorm_statistics_frozen() -> None:
    torch.manual_seed(0)
    model = build_model("resnet8", 1, 10, 28, [0.5], [0.5])
    with torch.no_grad():  # non-trivial running statistics, as a trained model has
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen: list[tuple[bool, torch.Tensor, torch.Tensor]] = []

    def record(mod: nn.Module, _inp: tuple, _out: torch.Tensor) -> None:
        seen.append((mod.training, mod.running_mean.clone(), mod.running_var.clone()))

    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)][-1]
    bn.register_forward_hook(record)  # deep copies keep the hook: it sees the attacked net
    forget, a, b = _images(12, 3, 1), _images(16, 0, 2), _images(16, 1, 3)
    retain = ImageSet(torch.cat([a.images, b.images]), torch.cat([a.labels, b.labels]),
                      np.concatenate([a.ids, b.ids]))
    cfg = RelearnConfig(steps=3, shown=4, retain_per_step=8, lr=0.05)
    curve = relearn_curve(model, forget, retain, _images(10, 5, 4), cfg=cfg, forget_class=3)
    assert len(curve) == 1 and 0.0 <= curve[0].metric <= 1.0
    assert len(seen) >= 3 and not any(training for training, _, _ in seen)
    assert all(torch.equal(mean, before[_key(model, bn, "running_mean")]) and
               torch.equal(var, before[_key(model, bn, "running_var")]) for _, mean, var in seen)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the original is untouched


def _key(model: nn.Module, module: nn.Module, buffer: str) -> str:
    name = next(n for n, m in model.named_modules() if m is module)
    return f"{name}.{buffer}"
