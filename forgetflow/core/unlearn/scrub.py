"""SCRUB (Kurmanji et al. 2023, "Towards unbounded machine unlearning"): a student that stays
close to the original teacher on the retain set and moves away from it on the forget set."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from forgetflow.core.models import Classifier
from forgetflow.core.unlearn.base import UnlearnTask, register_unlearner
from forgetflow.core.unlearn.common import (
    BatchStream,
    ConfiguredUnlearner,
    SGDConfig,
    amp,
    frozen_original,
    kl_teacher_student,
    make_optimizer,
    setup,
    step,
    steps_for,
)


@dataclass(frozen=True)
class ScrubConfig(SGDConfig):
    """`epochs`: SCRUB's epochs; each has one min pass (over `retain_fraction` of the retain
    set) and, in the first `msteps` epochs only, a max pass over the forget set first.
    Min loss = gamma·CE + alpha·KL on retain; max loss = -KL on forget, each sample's KL (in
    nats, at `temperature`) capped at `kl_cap`. `max_steps` caps each pass (tests)."""

    epochs: float = 3.0
    msteps: int = 2
    lr: float = 5e-3
    batch_size: int = 128
    forget_batch_size: int = 64
    temperature: float = 4.0
    gamma: float = 0.99
    alpha: float = 0.001
    kl_cap: float = 0.5
    clip: float = 5.0
    retain_fraction: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.msteps < 0 or not 0.0 < self.retain_fraction <= 1.0 or not self.kl_cap > 0:
            raise ValueError("need msteps >= 0, retain_fraction in (0, 1] and kl_cap > 0")


@register_unlearner("scrub")
class Scrub(ConfiguredUnlearner):
    """SCRUB: teacher = the frozen original, student = a copy. Each epoch (SGD, momentum 0.9,
    weight decay 5e-4, temperature 4, gamma 0.99, alpha 0.001 as in the paper) runs a max pass
    — ascend KL(teacher‖student) on forget batches — while epoch < msteps, then a min pass —
    descend gamma·CE + alpha·KL on retain batches; ending on min steps restores utility.

    The paper's max step is unbounded: the student can always raise KL further, and off-the-
    shelf runs reached NaN within tens of steps. Here each forget sample's KL is clamped at
    `kl_cap`, so a sample already that far from the teacher stops pushing, and gradients are
    norm-clipped at `clip`. The default cap (0.5 nats at T=4) and lr (5e-3, above the paper's
    5e-4, which barely moved our Adam-trained models) were picked on a 20k-sample Fashion-MNIST
    slice: a cap of log C kept ~77% retain accuracy on random-sample forgetting, 0.5 kept
    retain accuracy within ~1.5 pt, at the price of a weaker backdoor removal."""

    config_class = ScrubConfig

    def unlearn(self, task: UnlearnTask) -> Classifier:
        cfg: ScrubConfig = self.config
        t2 = cfg.temperature**2
        student, device, gen = setup(task)
        teacher = frozen_original(task, device)
        retain = BatchStream(task.retain, cfg.batch_size, device, gen)
        forget = BatchStream(task.forget, cfg.forget_batch_size, device, gen)
        opt = make_optimizer(student.parameters(), cfg.optimizer, cfg.lr, cfg.momentum,
                             cfg.weight_decay)
        max_pass = steps_for(len(forget), cfg.forget_batch_size, 1.0, cfg.max_steps)
        min_pass = steps_for(len(retain), cfg.batch_size, cfg.retain_fraction, cfg.max_steps)
        student.train()
        for epoch in range(max(1, math.ceil(cfg.epochs))):
            if epoch < cfg.msteps:
                for _ in range(max_pass):
                    x, _ = forget.next()
                    with amp(device), torch.no_grad():
                        t_logits = teacher(x)
                    with amp(device):
                        kl = kl_teacher_student(student(x), t_logits, cfg.temperature)
                    step(opt, -t2 * kl.clamp(max=cfg.kl_cap).mean(), student, clip=cfg.clip)
            for _ in range(min_pass):
                x, y = retain.next()
                with amp(device), torch.no_grad():
                    t_logits = teacher(x)
                with amp(device):
                    s_logits = student(x)
                    kl = kl_teacher_student(s_logits, t_logits, cfg.temperature).mean()
                    loss = cfg.gamma * F.cross_entropy(s_logits.float(), y) + cfg.alpha * t2 * kl
                step(opt, loss, student, clip=cfg.clip)
        return student.cpu()
