"""Pieces the baseline unlearners share: config merging, endless mini-batch streams over
uint8 tensors (no DataLoader), optimisers, relabelling and the bounded ascent losses."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import torch
import torch.nn.functional as F

from forgetflow.data.tensors import ImageSet, to_float
from forgetflow.models import Classifier
from forgetflow.training import configure_threads, pick_device
from forgetflow.unlearn.base import UnlearnTask

C = TypeVar("C")


def resolve_config(defaults: type[C], cfg: Mapping[str, object]) -> C:
    """Merge user overrides over a config dataclass's defaults; unknown keys are an error and
    numbers given as strings or ints (YAML, CLI) are coerced to the default's type."""
    known = {f.name: f for f in fields(defaults)}  # type: ignore[arg-type]
    unknown = sorted(set(cfg) - set(known))
    if unknown:
        raise ValueError(
            f"{defaults.__name__}: unknown option(s) {unknown}; valid: {sorted(known)}"
        )
    base = defaults()
    values: dict[str, Any] = {}
    for key, value in cfg.items():
        current = getattr(base, key)
        if isinstance(current, bool) and isinstance(value, str):
            value = value.lower() in ("1", "true", "yes")
        elif isinstance(current, float) and isinstance(value, int | str):
            value = float(value)
        elif isinstance(current, int) and not isinstance(current, bool) and isinstance(value, str):
            value = int(value)
        values[key] = value
    return defaults(**values)


def setup(task: UnlearnTask) -> tuple[Classifier, torch.device, torch.Generator]:
    """Threads, device, a trainable copy of the original and a seeded sampling generator."""
    configure_threads()
    device = pick_device()
    model = task.fresh_copy().to(device)
    return model, device, torch.Generator().manual_seed(task.seed)


def frozen_original(task: UnlearnTask, device: torch.device) -> Classifier:
    """The original model as a fixed teacher (eval mode, no gradients), on `device`."""
    teacher = task.fresh_copy().to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def amp(device: torch.device) -> AbstractContextManager[Any]:
    """bfloat16 autocast on CUDA (as in training), a no-op on CPU."""
    return torch.autocast(device.type, enabled=device.type == "cuda", dtype=torch.bfloat16)


def steps_for(n: int, batch_size: int, epochs: float, max_steps: int | None = None) -> int:
    """Optimizer steps for `epochs` (fractional allowed) passes over n samples."""
    steps = max(1, round(epochs * math.ceil(n / batch_size)))
    return min(steps, max_steps) if max_steps is not None else steps


class BatchStream:
    """Endless shuffled mini-batches of one ImageSet: each epoch is a fresh permutation and
    pixels become float only per batch, so large sets cost no extra memory."""

    def __init__(self, data: ImageSet, batch_size: int, device: torch.device,
                 generator: torch.Generator, labels: torch.Tensor | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.images = data.images.to(device)
        self.labels = (data.labels if labels is None else labels).to(device)
        self.batch_size = min(batch_size, len(data))
        self.device = device
        self.generator = generator
        self._order = torch.empty(0, dtype=torch.long)
        self._pos = 0

    def __len__(self) -> int:
        return len(self.labels)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._pos >= len(self._order):
            self._order = torch.randperm(len(self.labels), generator=self.generator)
            self._pos = 0
        idx = self._order[self._pos: self._pos + self.batch_size].to(self.device)
        self._pos += self.batch_size
        return to_float(self.images[idx]), self.labels[idx]


def make_optimizer(params: Iterable[torch.nn.Parameter], kind: str, lr: float,
                   momentum: float = 0.9, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {kind!r}; expected 'sgd' or 'adam'")


def step(opt: torch.optim.Optimizer, loss: torch.Tensor, model: torch.nn.Module,
         clip: float | None = None, mask: dict[str, torch.Tensor] | None = None) -> None:
    """Backward + update. `clip` bounds the gradient norm; `mask` zeroes gradients of weights
    outside a saliency mask (their momentum then stays zero, so they never move)."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite unlearning loss {float(loss)}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if mask is not None:
        for name, p in model.named_parameters():
            if p.grad is not None and name in mask:
                p.grad.mul_(mask[name])
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()


def random_wrong_labels(labels: torch.Tensor, num_classes: int,
                        generator: torch.Generator) -> torch.Tensor:
    """A uniformly random label different from each given one (fixed once per run)."""
    if num_classes < 2:
        raise ValueError("random relabelling needs at least two classes")
    shift = torch.randint(1, num_classes, labels.shape, generator=generator)
    return (labels.cpu() + shift) % num_classes


def capped_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, cap: float) -> torch.Tensor:
    """Mean per-sample CE, each clamped at `cap`: a sample whose loss already exceeds the cap
    contributes no gradient, so maximising this term is bounded by `cap`."""
    return F.cross_entropy(logits.float(), labels, reduction="none").clamp(max=cap).mean()


def kl_teacher_student(student: torch.Tensor, teacher: torch.Tensor,
                       temperature: float) -> torch.Tensor:
    """Per-sample KL(teacher || student) of temperature-softened outputs (Hinton et al.)."""
    log_s = F.log_softmax(student.float() / temperature, dim=1)
    log_t = F.log_softmax(teacher.float() / temperature, dim=1)
    return (log_t.exp() * (log_t - log_s)).sum(1)


@dataclass(frozen=True)
class SGDConfig:
    """Fields every fine-tuning-style baseline shares. `epochs` counts passes over the retain
    set (fractions allowed); `max_steps` caps the run (small-budget tests)."""

    epochs: float = 1.0
    lr: float = 0.01
    batch_size: int = 128
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    max_steps: int | None = None


def train_relabelled(model: Classifier, task: UnlearnTask, cfg: SGDConfig, forget_batch_size: int,
                     device: torch.device, gen: torch.Generator,
                     mask: dict[str, torch.Tensor] | None = None) -> None:
    """Random-label training: forget samples carry a fixed random wrong label each, and every
    step fits one retain batch together with one relabelled forget batch (one CE over both,
    so the forget share of each step is forget_batch_size / (batch_size + forget_batch_size))."""
    fake = random_wrong_labels(task.forget.labels, task.spec.num_classes, gen)
    retain = BatchStream(task.retain, cfg.batch_size, device, gen)
    forget = BatchStream(task.forget, forget_batch_size, device, gen, labels=fake)
    params = [p for name, p in model.named_parameters() if mask is None or name in mask]
    opt = make_optimizer(params, cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
    model.train()
    for _ in range(steps_for(len(retain), cfg.batch_size, cfg.epochs, cfg.max_steps)):
        xr, yr = retain.next()
        xf, yf = forget.next()
        with amp(device):
            loss = F.cross_entropy(model(torch.cat([xr, xf])).float(), torch.cat([yr, yf]))
        step(opt, loss, model, mask=mask)
