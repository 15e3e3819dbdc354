"""`dm`: distribution-matching unlearning (the seed method; equations in docs/method.md).

Fine-tune the model until its predictions on the forget set are distributed like its
predictions on unseen third-party data. The reference is computed once from the original model
on third-party samples, and a replay batch from the retain set plus an anchor on third-party
outputs keep utility. A two-sample test on a probe of the forget set ends the run early.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F

from forgetflow.data.tensors import ImageSet, to_float
from forgetflow.models import Classifier
from forgetflow.training import configure_threads, pick_device
from forgetflow.triggers import stamp
from forgetflow.unlearn.base import Unlearner, UnlearnTask, register_unlearner
from forgetflow.unlearn.dm_reference import MatchTargets, build_targets, stop_statistic


@dataclass
class DMConfig:
    """Knobs of `dm`; every field can be overridden through create_unlearner("dm", **cfg)."""

    lr: float = 1e-3
    max_steps: int = 120
    min_steps: int = 10
    batch_size: int = 128
    replay_weight: float = 1.0
    anchor_weight: float = 1.0
    check_every: int = 10
    probe_size: int = 1024
    stop_margin: float = 0.02
    min_agreement: float = 0.97
    warmup_steps: int = 10
    trainable: str = "head"
    class_forget_acc: float = 0.005
    backdoor_asr: float = 0.01


def _draw(n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """k indices drawn with replacement: cheap, and fine for small sets too."""
    return torch.randint(0, n, (k,), generator=gen)


@register_unlearner("dm")
class DistributionMatching(Unlearner):
    """Match forget-set prediction distributions to unseen-data ones; stop at indistinguishable."""

    def __init__(self, **cfg: object) -> None:
        known = {f.name for f in fields(DMConfig)}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f"unknown dm option(s) {sorted(unknown)}; known: {sorted(known)}")
        super().__init__(**cfg)
        self.config = DMConfig(**cfg)  # type: ignore[arg-type]
        self.report: dict[str, float | int | str] = {}

    def unlearn(self, task: UnlearnTask) -> Classifier:
        configure_threads()
        cfg, device = self.config, pick_device()
        started = time.perf_counter()
        targets = build_targets(task)  # one forward pass of the original on forget + reference
        model = task.fresh_copy().to(device)
        original = task.model.to(device).eval()
        params = _trainable_parameters(model, cfg.trainable)
        opt = torch.optim.Adam(params, lr=cfg.lr)
        warmup = max(1, cfg.warmup_steps)  # Adam's first steps are sign-like: ramp them in
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
        gen = torch.Generator().manual_seed(task.seed)
        probe = _probe(task, cfg.probe_size, gen)
        steps, statistic, agreement, stopped = 0, float("nan"), float("nan"), "budget"
        trace: list[tuple[int, float, float]] = []
        for steps in range(1, cfg.max_steps + 1):
            model.train()
            loss = self._step_loss(model, original, task, targets, gen, device)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if steps >= cfg.min_steps and steps % cfg.check_every == 0:
                statistic, agreement, done = stop_statistic(model, task, targets, probe, cfg)
                trace.append((steps, round(statistic, 4), round(agreement, 4)))
                if done:
                    stopped = "matched"
                    break
        self.report = {"steps": steps, "stop": stopped, "stop_statistic": statistic,
                       "anchor_agreement": agreement, "trace": trace,
                       "seconds": time.perf_counter() - started, **asdict(cfg)}
        return model.cpu()

    def _step_loss(self, model, original, task: UnlearnTask, targets: MatchTargets,
                   gen: torch.Generator, device: torch.device) -> torch.Tensor:
        cfg = self.config
        fi = _draw(len(task.forget), cfg.batch_size, gen)
        x_f = to_float(task.forget.images[fi]).to(device)
        logits_f = model(x_f)
        loss = targets.match_loss(logits_f, fi.to(device))
        ri = _draw(len(task.retain), cfg.batch_size, gen)
        x_r = to_float(task.retain.images[ri]).to(device)
        y_r = task.retain.labels[ri].to(device)
        loss = loss + cfg.replay_weight * F.cross_entropy(model(x_r), y_r)
        anchor = targets.anchor
        ui = _draw(len(anchor), cfg.batch_size, gen)
        x_u = anchor.images[ui]
        with torch.no_grad():
            ref_u = F.softmax(original(to_float(x_u).to(device)), 1)
        inputs = [x_u]
        if task.scenario == "backdoor":
            inputs.append(stamp(x_u, task.trigger))  # triggered unseen must look like clean unseen
        for xs in inputs:
            logp = F.log_softmax(model(to_float(xs).to(device)), 1)
            loss = loss + cfg.anchor_weight * F.kl_div(logp, ref_u, reduction="batchmean")
        return loss


def _trainable_parameters(model: Classifier, which: str) -> list[torch.nn.Parameter]:
    """`all`, or `head`: only the classifier head learns; the feature extractor is frozen,
    which skips its backward pass (most of a step's cost on a CPU)."""
    if which == "all":
        return list(model.parameters())
    if which != "head":
        raise ValueError(f"trainable must be 'all' or 'head', got {which!r}")
    head = model.backbone.head
    for p in model.parameters():
        p.requires_grad_(False)
    for p in head.parameters():
        p.requires_grad_(True)
    return list(head.parameters())


def _probe(task: UnlearnTask, size: int, gen: torch.Generator) -> ImageSet:
    n = len(task.forget)
    idx = torch.randperm(n, generator=gen)[: min(size, n)]
    return task.forget.take(idx.numpy())

