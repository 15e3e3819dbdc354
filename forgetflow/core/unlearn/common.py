"""Pieces the baseline unlearners share: config merging, endless mini-batch streams over
uint8 tensors (no DataLoader), optimisers, relabelling and the bounded ascent losses."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from typing import Any, TypeVar, get_args, get_type_hints

import torch
import torch.nn.functional as F

from forgetflow.core.data.tensors import ImageSet, to_float
from forgetflow.core.models import Classifier
from forgetflow.core.training import configure_threads, pick_device
from forgetflow.core.triggers import TriggerSpec, stamp
from forgetflow.core.unlearn.base import Unlearner, UnlearnTask

C = TypeVar("C")


def _coerce(value: object, hint: object) -> object:
    """Numbers and booleans arriving as strings (CLI) or ints (YAML) become the field's type."""
    options = [a for a in get_args(hint) if a is not type(None)] or [hint]
    target = options[0] if len(options) == 1 else None
    if value is None or isinstance(value, bool) or target is None:
        return value
    if target is bool and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if target is float and isinstance(value, int | str):
        return float(value)
    if target is int and isinstance(value, str):
        return int(value)
    return value


def resolve_config(defaults: type[C], cfg: Mapping[str, object]) -> C:
    """Merge user overrides over a config dataclass's defaults; unknown keys are an error."""
    known = {f.name for f in fields(defaults)}  # type: ignore[arg-type]
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError(
            f"{defaults.__name__}: unknown option(s) {unknown}; valid: {sorted(known)}"
        )
    hints = get_type_hints(defaults)
    values = {}
    for key, value in cfg.items():
        try:
            values[key] = _coerce(value, hints[key])
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from exc
    return defaults(**values)


class ConfiguredUnlearner(Unlearner):
    """An Unlearner whose kwargs are merged over the defaults of `config_class` at
    construction, so a misspelt option fails in `create_unlearner`, not mid-run."""

    config_class: type = object

    def __init__(self, **cfg: object) -> None:
        super().__init__(**cfg)
        self.config: Any = resolve_config(self.config_class, cfg)


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

    def exhausted(self) -> bool:
        """True when the next batch starts a fresh pass."""
        return self._pos >= len(self._order)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.exhausted():
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


def top_gradient_masks(named: list[tuple[str, torch.nn.Parameter]],
                       k: int) -> dict[str, torch.Tensor]:
    """Weight saliency from the gradients already accumulated on `named`: the k weights with
    the largest |grad|, ranked over all of them at once, get mask 1 (no gradient counts as 0).
    Shared by SalUn and dm's sparse updates, which differ only in the loss and in k."""
    scores = torch.cat([(p.grad.abs() if p.grad is not None else torch.zeros_like(p)).flatten()
                        for _, p in named])
    keep = torch.zeros_like(scores)
    if k > 0:
        keep[torch.topk(scores, k, sorted=False).indices] = 1.0
    masks, offset = {}, 0
    for name, p in named:
        masks[name] = keep[offset: offset + p.numel()].view_as(p)
        offset += p.numel()
    return masks


class WeightMask:
    """Only the weights where `masks[name]` is 1 may move: their gradients pass, the others'
    are zeroed, and after each update the others are written back to their starting values
    (weight decay inside the optimizer would otherwise still shrink them)."""

    def __init__(self, model: torch.nn.Module, masks: dict[str, torch.Tensor]) -> None:
        self.masks = masks
        self.start = {n: p.detach().clone() for n, p in model.named_parameters() if n in masks}

    def fraction(self) -> float:
        total = sum(m.numel() for m in self.masks.values())
        return float(sum(m.sum() for m in self.masks.values())) / max(1, total)

    def mask_grads(self, model: torch.nn.Module) -> None:
        for name, p in model.named_parameters():
            if p.grad is not None and name in self.masks:
                p.grad.mul_(self.masks[name])

    @torch.no_grad()
    def restore(self, model: torch.nn.Module) -> None:
        for name, p in model.named_parameters():
            if name in self.masks:
                p.copy_(torch.where(self.masks[name].bool(), p, self.start[name]))


def step(opt: torch.optim.Optimizer, loss: torch.Tensor, model: torch.nn.Module,
         clip: float | None = None, mask: WeightMask | None = None) -> None:
    """Backward + update; `clip` bounds the gradient norm, `mask` limits which weights move.
    A non-finite loss is an error, never a silent skip."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite unlearning loss {float(loss)}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if mask is not None:
        mask.mask_grads(model)
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    if mask is not None:
        mask.restore(model)


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
    set (fractions allowed); `max_steps` caps the run (small-budget tests); `budget` scales
    every pass, schedule included (the benchmark's time-matched rows run budget < 1)."""

    epochs: float = 1.0
    lr: float = 0.01
    batch_size: int = 128
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    max_steps: int | None = None
    budget: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.epochs < math.inf or not 0 < self.lr < math.inf or self.batch_size < 1:
            raise ValueError(f"epochs and lr must be finite and > 0 and batch_size >= 1, got "
                             f"{self.epochs}, {self.lr}, {self.batch_size}")
        if not 0.0 <= self.momentum < 1.0 or not 0.0 <= self.weight_decay < math.inf:
            raise ValueError(f"momentum must be in [0, 1) and weight_decay finite and >= 0, "
                             f"got {self.momentum}, {self.weight_decay}")
        if not 0.0 < self.budget <= 1.0:
            raise ValueError(f"budget must be in (0, 1], got {self.budget}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}")


def train_relabelled(model: Classifier, task: UnlearnTask, cfg: SGDConfig, forget_batch_size: int,
                     device: torch.device, gen: torch.Generator,
                     mask: WeightMask | None = None, fresh_labels: bool = False) -> None:
    """Random-label training: forget samples carry a random wrong label each, and every
    step fits one retain batch together with one relabelled forget batch (one CE over both,
    so the forget share of each step is forget_batch_size / (batch_size + forget_batch_size)).
    `fresh_labels` draws new random labels at every pass over the forget set (SalUn's RL)
    instead of fixing them once."""
    fake = random_wrong_labels(task.forget.labels, task.spec.num_classes, gen)
    retain = BatchStream(task.retain, cfg.batch_size, device, gen)
    forget = BatchStream(task.forget, forget_batch_size, device, gen, labels=fake)
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
    model.train()
    for _ in range(steps_for(len(retain), cfg.batch_size, cfg.epochs * cfg.budget,
                             cfg.max_steps)):
        xr, yr = retain.next()
        if fresh_labels and forget.exhausted():
            forget.labels = random_wrong_labels(task.forget.labels, task.spec.num_classes,
                                                gen).to(device)
        xf, yf = forget.next()
        with amp(device):
            loss = F.cross_entropy(model(torch.cat([xr, xf])).float(), torch.cat([yr, yf]))
        step(opt, loss, model, mask=mask)


def finetune_retain(task: UnlearnTask, cfg: SGDConfig, l1: float = 0.0,
                    stamp_with: TriggerSpec | None = None) -> Classifier:
    """Cross-entropy on retain batches; with `l1` > 0 adds l1 * (1 - t/T) * ||θ||_1, the
    linearly decaying sparsity penalty of Jia et al. (2023); with `stamp_with` each batch is
    doubled by its trigger-stamped copy under the true labels."""
    model, device, gen = setup(task)
    retain = BatchStream(task.retain, cfg.batch_size, device, gen)
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.momentum,
                         cfg.weight_decay)
    total = steps_for(len(retain), cfg.batch_size, cfg.epochs * cfg.budget, cfg.max_steps)
    model.train()
    for t in range(total):
        x, y = retain.next()
        if stamp_with is not None:
            stamped = stamp((x * 255).round().to(torch.uint8).cpu(), stamp_with)
            x, y = torch.cat([x, to_float(stamped).to(device)]), torch.cat([y, y])
        with amp(device):
            loss = F.cross_entropy(model(x).float(), y)
        if l1 > 0.0:
            norm = sum(p.abs().sum() for p in model.parameters())
            loss = loss + l1 * (1.0 - t / total) * norm
        step(opt, loss, model)
    return model.cpu()
