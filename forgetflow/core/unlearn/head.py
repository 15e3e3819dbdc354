"""Head-only baselines: the frozen-feature shortcut `dm` uses (trainable="head"), given to
fine-tuning, random labels, NegGrad+ and SCRUB, so that a speed-up from the shortcut is not
credited to the method.

Every pool (forget set, a retain pool of dm's replay size, drawn the same way) is encoded once
through the frozen feature extractor (`dm_streams.Encoder`); only `model.head` trains. The
losses are those of the full-network baselines (baselines.py, scrub.py) on the head's input.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from forgetflow.core.models import Classifier
from forgetflow.core.unlearn.base import UnlearnTask, register_unlearner
from forgetflow.core.unlearn.common import (
    ConfiguredUnlearner,
    SGDConfig,
    capped_cross_entropy,
    kl_teacher_student,
    make_optimizer,
    random_wrong_labels,
    setup,
    step,
    steps_for,
)
from forgetflow.core.unlearn.dm_streams import Encoder, subsample


@dataclass(frozen=True)
class HeadConfig(SGDConfig):
    """Budgets in passes over the encoded retain pool (`retain_pool` rows, dm's replay size).
    NegGrad+: `alpha`, forget CE capped at log C (the head is small; uncapped ascent diverges
    within a few passes). SCRUB: `msteps`, `temperature`, `gamma`, `scrub_alpha`."""

    epochs: float = 10.0
    lr: float = 0.01
    batch_size: int = 256
    forget_batch_size: int = 64
    retain_pool: int = 8192
    alpha: float = 0.8
    msteps: int = 2
    temperature: float = 4.0
    gamma: float = 0.99
    scrub_alpha: float = 0.001


class FeatureStream:
    """Endless shuffled batches over encoded features (already float, already on device)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch: int, gen: torch.Generator):
        self.x, self.y, self.batch, self.gen = x, y, min(batch, len(y)), gen
        self._order, self._pos = torch.empty(0, dtype=torch.long), 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._pos >= len(self._order):
            self._order, self._pos = torch.randperm(len(self.y), generator=self.gen), 0
        idx = self._order[self._pos: self._pos + self.batch].to(self.x.device)
        self._pos += self.batch
        return self.x[idx], self.y[idx]


class HeadUnlearner(ConfiguredUnlearner):
    """Encode once, then `self.loss` on the head for the configured number of steps."""

    config_class = HeadConfig
    uses_forget = True

    def unlearn(self, task: UnlearnTask) -> Classifier:
        cfg: HeadConfig = self.config
        model, device, gen = setup(task)
        model.eval()
        encoder = Encoder.for_head(model, device)
        pool = subsample(task.retain, cfg.retain_pool, task.seed)
        retain = encoder.pool(pool.images, pool.labels)
        forget = encoder.pool(task.forget.images, task.forget.labels)
        head = model.head.train()
        self.teacher = copy.deepcopy(head).eval()
        self.retain = FeatureStream(retain.x, retain.y.to(device), cfg.batch_size, gen)
        self.forget = FeatureStream(forget.x, self.forget_labels(task, gen).to(device),
                                    cfg.forget_batch_size, gen)
        opt = make_optimizer(head.parameters(), cfg.optimizer, cfg.lr, cfg.momentum,
                             cfg.weight_decay)
        total = steps_for(len(retain), cfg.batch_size, cfg.epochs * cfg.budget, cfg.max_steps)
        per_epoch = max(1, math.ceil(len(retain) / cfg.batch_size))
        for t in range(total):
            step(opt, self.loss(head, task, t // per_epoch), head)
        model.eval()
        return model.cpu()

    def forget_labels(self, task: UnlearnTask, gen: torch.Generator) -> torch.Tensor:
        return task.forget.labels

    def loss(self, head: torch.nn.Module, task: UnlearnTask, epoch: int) -> torch.Tensor:
        raise NotImplementedError


@register_unlearner("finetune_head")
class FinetuneHead(HeadUnlearner):
    """FT on the head: cross-entropy on encoded retain batches only."""

    def loss(self, head, task, epoch):
        x, y = self.retain.next()
        return F.cross_entropy(head(x), y)


@register_unlearner("random_label_head")
class RandomLabelHead(HeadUnlearner):
    """RL on the head: one retain batch plus one forget batch with fixed random wrong labels."""

    def forget_labels(self, task, gen):
        return random_wrong_labels(task.forget.labels, task.spec.num_classes, gen)

    def loss(self, head, task, epoch):
        (xr, yr), (xf, yf) = self.retain.next(), self.forget.next()
        return F.cross_entropy(head(torch.cat([xr, xf])), torch.cat([yr, yf]))


@register_unlearner("neggrad_plus_head")
class NegGradPlusHead(HeadUnlearner):
    """NegGrad+ on the head: alpha·CE(retain) - (1 - alpha)·CE(forget, capped at log C)."""

    def loss(self, head, task, epoch):
        (xr, yr), (xf, yf) = self.retain.next(), self.forget.next()
        cap = math.log(task.spec.num_classes)
        a = self.config.alpha
        return a * F.cross_entropy(head(xr), yr) - (1 - a) * capped_cross_entropy(head(xf), yf,
                                                                                  cap)


@register_unlearner("scrub_head")
class ScrubHead(HeadUnlearner):
    """SCRUB on the head: each step ascends KL(teacher‖student) on a forget batch while
    epoch < msteps, and descends gamma·CE + alpha·KL on a retain batch."""

    def loss(self, head, task, epoch):
        cfg: HeadConfig = self.config
        t2 = cfg.temperature**2
        xr, yr = self.retain.next()
        with torch.no_grad():
            t_r = self.teacher(xr)
        s_r = head(xr)
        loss = cfg.gamma * F.cross_entropy(s_r, yr) + cfg.scrub_alpha * t2 * kl_teacher_student(
            s_r, t_r, cfg.temperature).mean()
        if epoch < cfg.msteps:
            xf, _ = self.forget.next()
            with torch.no_grad():
                t_f = self.teacher(xf)
            cap = math.log(task.spec.num_classes)
            loss = loss - t2 * kl_teacher_student(head(xf), t_f, cfg.temperature).clamp(
                max=cap).mean()
        return loss
