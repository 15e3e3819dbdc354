"""Sparsity-flavoured baselines: ℓ1-sparse fine-tuning (Jia et al. 2023) and SalUn's
saliency-masked random labelling (Fan et al. 2024)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from forgetflow.core.data.tensors import ImageSet, to_float
from forgetflow.core.models import Classifier
from forgetflow.core.unlearn.base import UnlearnTask, register_unlearner
from forgetflow.core.unlearn.common import (
    ConfiguredUnlearner,
    SGDConfig,
    WeightMask,
    amp,
    finetune_retain,
    setup,
    top_gradient_masks,
    train_relabelled,
)


@dataclass(frozen=True)
class L1SparseConfig(SGDConfig):
    """`alpha`: the ℓ1 coefficient at the first step; it decays linearly to 0 at the last."""

    epochs: float = 10.0
    batch_size: int = 256
    alpha: float = 5e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")


@register_unlearner("l1_sparse")
class L1Sparse(ConfiguredUnlearner):
    """ℓ1-sparse MU (Jia et al. 2023, "Model sparsity can simplify machine unlearning"):
    fine-tune on the retain set minimising CE + γ_t·||θ||_1 with γ_t = alpha·(1 - t/T), the
    paper's linearly decaying schedule (sparsify early, recover accuracy late). The ℓ1 term
    only shrinks weights and the CE is descended, so no bound is needed."""

    config_class = L1SparseConfig

    def unlearn(self, task: UnlearnTask) -> Classifier:
        cfg: L1SparseConfig = self.config
        return finetune_retain(task, cfg, l1=cfg.alpha)


@dataclass(frozen=True)
class SalUnConfig(SGDConfig):
    """`saliency`: share of weights (by |∇ forget loss|, globally ranked) that may change;
    `saliency_batch_size` only chunks the one gradient pass over the forget set."""

    epochs: float = 10.0
    lr: float = 0.013
    batch_size: int = 256
    forget_batch_size: int = 64
    saliency: float = 0.5
    saliency_batch_size: int = 256
    fresh_labels: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.saliency <= 1.0:
            raise ValueError(f"saliency must be in (0, 1], got {self.saliency}")


def saliency_mask(model: Classifier, forget: ImageSet, fraction: float, batch_size: int,
                  device: torch.device) -> dict[str, torch.Tensor]:
    """SalUn's weight saliency: |∂ CE(forget) / ∂θ| accumulated over the whole forget set
    (eval mode, so BatchNorm statistics are untouched); the top `fraction` of all weights,
    ranked globally, get mask 1."""
    model.eval()
    model.zero_grad(set_to_none=True)
    for start in range(0, len(forget), batch_size):
        x = to_float(forget.images[start: start + batch_size]).to(device)
        y = forget.labels[start: start + batch_size].to(device)
        with amp(device):
            loss = F.cross_entropy(model(x).float(), y, reduction="sum") / len(forget)
        loss.backward()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    k = int(round(fraction * sum(p.numel() for _, p in named)))
    masks = top_gradient_masks(named, k)
    model.zero_grad(set_to_none=True)
    return masks


@register_unlearner("salun")
class SalUn(ConfiguredUnlearner):
    """SalUn (Fan et al. 2024): a weight-saliency mask from the forget loss's gradient (default
    top 50% of weights, the paper's CIFAR-10 setting), then the RL recipe — forget samples
    with fixed random wrong labels mixed with retain batches — updating only salient weights.
    Like random labelling it only descends a CE, so it is bounded by construction; frozen
    weights are restored after each update so weight decay cannot move them either."""

    config_class = SalUnConfig

    def unlearn(self, task: UnlearnTask) -> Classifier:
        cfg: SalUnConfig = self.config
        model, device, gen = setup(task)
        masks = saliency_mask(model, task.forget, cfg.saliency, cfg.saliency_batch_size, device)
        train_relabelled(model, task, cfg, cfg.forget_batch_size, device, gen,
                         mask=WeightMask(model, masks), fresh_labels=cfg.fresh_labels)
        return model.cpu()
