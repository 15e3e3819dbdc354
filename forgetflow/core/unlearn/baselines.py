"""Baseline unlearners (docs/baselines.md): Retrain, fine-tuning, NegGrad+ and random labelling
(ℓ1-sparse and SalUn live in baselines_sparse, SCRUB in scrub; importing this module
registers all of them).

Every method copies the original (`task.fresh_copy()`), samples mini-batches straight from
the uint8 tensors, and takes a fixed number of steps counted in passes over the retain set.
Terms that push *away* from the forget set are bounded, so no run can diverge."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch.nn.functional as F

from forgetflow.core.models import Classifier
from forgetflow.core.training import train_model
from forgetflow.core.unlearn.base import UnlearnTask, register_unlearner
from forgetflow.core.unlearn.common import (
    BatchStream,
    ConfiguredUnlearner,
    SGDConfig,
    amp,
    capped_cross_entropy,
    finetune_retain,
    make_optimizer,
    setup,
    step,
    steps_for,
    train_relabelled,
)


@dataclass(frozen=True)
class RetrainConfig:
    """`epochs` overrides the recipe's epoch count: for small-budget tests only, since the
    gold standard is the original recipe unchanged."""

    epochs: int | None = None

    def __post_init__(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1 or None, got {self.epochs}")


@register_unlearner("retrain")
class Retrain(ConfiguredUnlearner):
    """Retrain from scratch on the retain set with the original recipe (`task.train_config`):
    the exact answer every other method is measured against. Nothing to bound."""

    config_class = RetrainConfig
    per_stage = False  # trains once on the retain set, whatever the forget set's scenarios

    def unlearn(self, task: UnlearnTask) -> Classifier:
        cfg: RetrainConfig = self.config
        recipe = task.train_config
        if cfg.epochs is not None:
            recipe = replace(recipe, epochs=cfg.epochs)
        model, _ = train_model(task.retain, task.spec, recipe, progress=False)
        return model


@dataclass(frozen=True)
class FinetuneConfig(SGDConfig):
    """Paper budget (docs/baselines.md): 10 epochs, SGD lr 0.01, batch 256, constant lr."""

    epochs: float = 10.0
    batch_size: int = 256


@register_unlearner("finetune")
class Finetune(ConfiguredUnlearner):
    """FT (Warnecke et al. 2023; the FT baseline of Jia et al. 2023 and SalUn): a few epochs of
    plain cross-entropy on the retain set with SGD, relying on catastrophic forgetting. Pure
    descent, so nothing to bound."""

    config_class = FinetuneConfig

    def unlearn(self, task: UnlearnTask) -> Classifier:
        return finetune_retain(task, self.config)


@dataclass(frozen=True)
class NegGradPlusConfig(SGDConfig):
    """`alpha` weighs the retain CE, 1 - alpha the (ascended) forget CE; `forget_loss_cap`
    bounds each forget sample's CE (None: log(num_classes), the loss of a uniform guess)."""

    epochs: float = 5.0
    alpha: float = 0.8
    forget_batch_size: int = 128
    forget_loss_cap: float | None = None
    clip: float = 5.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")


@register_unlearner("neggrad_plus")
class NegGradPlus(ConfiguredUnlearner):
    """NegGrad+ (Kurmanji et al. 2023): each step descends alpha * CE(retain batch) and ascends
    (1 - alpha) * CE(forget batch). Plain ascent on CE is unbounded (weights grow without
    limit, the loss reaches inf/NaN within tens of steps), so each forget sample's CE is
    clamped at `forget_loss_cap`: once a sample is as wrong as a uniform guess it stops
    pushing. Gradients are also norm-clipped at `clip`. alpha = 0.8 (the paper tunes it per
    setting) was the largest of {0.95, 0.9, 0.8, 0.7} that removed a backdoor on a 20k-sample
    Fashion-MNIST slice; it costs ~1 pt retain accuracy there."""

    config_class = NegGradPlusConfig

    def unlearn(self, task: UnlearnTask) -> Classifier:
        cfg: NegGradPlusConfig = self.config
        cap = cfg.forget_loss_cap
        if cap is None:
            cap = math.log(task.spec.num_classes)
        model, device, gen = setup(task)
        retain = BatchStream(task.retain, cfg.batch_size, device, gen)
        forget = BatchStream(task.forget, cfg.forget_batch_size, device, gen)
        opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.momentum,
                             cfg.weight_decay)
        model.train()
        for _ in range(steps_for(len(retain), cfg.batch_size, cfg.epochs * cfg.budget,
                                 cfg.max_steps)):
            xr, yr = retain.next()
            xf, yf = forget.next()
            with amp(device):
                lr_ = F.cross_entropy(model(xr).float(), yr)
                lf = capped_cross_entropy(model(xf), yf, cap)
            step(opt, cfg.alpha * lr_ - (1.0 - cfg.alpha) * lf, model, clip=cfg.clip)
        return model.cpu()


@dataclass(frozen=True)
class RandomLabelConfig(SGDConfig):
    """Paper budget (docs/baselines.md): 10 epochs, SGD lr 0.01, batch 256."""

    epochs: float = 10.0
    batch_size: int = 256
    forget_batch_size: int = 64


@register_unlearner("random_label")
class RandomLabel(ConfiguredUnlearner):
    """Random labelling (Graves et al. 2021, "amnesiac" relabelling; the RL baseline of Jia et
    al. 2023 / SalUn): each forget sample gets one fixed random *wrong* label, and the model is
    fine-tuned on those mixed with retain batches. It only ever descends a CE, so it is bounded
    by construction. For backdoors the wrong label is anything but the poisoned one."""

    config_class = RandomLabelConfig

    def unlearn(self, task: UnlearnTask) -> Classifier:
        cfg: RandomLabelConfig = self.config
        model, device, gen = setup(task)
        train_relabelled(model, task, cfg, cfg.forget_batch_size, device, gen)
        return model.cpu()


@register_unlearner("finetune_stamped")
class FinetuneStamped(ConfiguredUnlearner):
    """Backdoors only: FT on retain batches plus the same batches stamped with the trigger and
    their true labels, which teaches "the patch means nothing" directly. Same budget as FT."""

    config_class = FinetuneConfig

    def unlearn(self, task: UnlearnTask) -> Classifier:
        if task.trigger is None:
            raise ValueError("finetune_stamped needs a trigger (backdoor requests only)")
        return finetune_retain(task, self.config, stamp_with=task.trigger)

