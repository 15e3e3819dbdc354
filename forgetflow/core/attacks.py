"""Depth attacks (docs/method.md §7): is the knowledge gone from the weights, or only from
the outputs?

Output metrics cannot tell forgetting from hiding (a model that masks one logit passes them).
Two attacks look underneath, each run identically on every method and on Retrain:
- `relearn_acc`: a short relearning attack on all weights (BatchNorm statistics frozen) from a
  few labelled forget samples mixed with retained data, then a metric overshoot cannot win
  (class: mean of held-class recall and other-class accuracy; samples: accuracy on the forget
  rows not shown; backdoor: ASR). Hidden knowledge comes back within a few steps; knowledge
  that was never there does not. Its budget (steps x shown samples) is calibrated on tuning
  seeds so that it separates the original from Retrain (forgetflow.bench.depth).
- `probe_acc` (the metric): a linear probe on penultimate features. Class requests:
  forgotten class vs rest on unseen (holdout) data (`class_probe_acc`); sample requests: forget
  samples vs holdout samples, membership (`membership_probe_acc`). Each scenario picks its
  probe (forgetflow/core/scenarios).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from forgetflow.core.data.tensors import ImageSet, to_float
from forgetflow.core.metrics import accuracy, attack_success_rate, predict_logits
from forgetflow.core.triggers import TriggerSpec

PROBE_MAX_PER_SIDE = 2000
EVAL_ROWS = 3000  # test rows a relearn metric reads (seeded subset, same for every model)


class ProbeError(ValueError):
    """The model exposes no feature hook, so a probe on its features is impossible."""


def final_linear(model: torch.nn.Module) -> torch.nn.Linear:
    """The classifier's last layer (`model.head[-1]`); the hook probes and logit masks need."""
    head = getattr(model, "head", None)
    if not callable(getattr(model, "embed", None)) or not isinstance(head, torch.nn.Sequential) \
            or not isinstance(head[-1], torch.nn.Linear):
        raise ProbeError(
            f"{type(model).__name__} has no feature hook: probes need `embed(x)` and a `head` "
            "(nn.Sequential) whose last layer is nn.Linear")
    return head[-1]


@torch.no_grad()
def penultimate_features(model: torch.nn.Module, images: torch.Tensor,
                         batch: int = 2048) -> np.ndarray:
    """What the last linear layer reads: head[:-1](embed(x)), flattened, as float32 numpy."""
    final_linear(model)
    model.eval()
    device = next(model.parameters()).device
    out = [model.head[:-1](model.embed(to_float(images[i: i + batch]).to(device))).flatten(1)
           for i in range(0, len(images), batch)]
    return torch.cat(out).float().cpu().numpy()


def _probe_cv_accuracy(pos: np.ndarray, neg: np.ndarray, seed: int) -> float:
    """Balanced 5-fold cross-validated accuracy of a logistic probe; 0.5 = no signal."""
    rng = np.random.default_rng(seed)
    n = min(len(pos), len(neg), PROBE_MAX_PER_SIDE)
    if n < 10:
        return float("nan")
    pos, neg = pos[rng.choice(len(pos), n, False)], neg[rng.choice(len(neg), n, False)]
    x, y = np.concatenate([pos, neg]), np.concatenate([np.ones(n), np.zeros(n)])
    scores = []
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y):
        scaler = StandardScaler().fit(x[tr])
        clf = LogisticRegression(max_iter=300, C=0.1).fit(scaler.transform(x[tr]), y[tr])
        scores.append(clf.score(scaler.transform(x[te]), y[te]))
    return float(np.mean(scores))


def class_probe_acc(model: torch.nn.Module, holdout: ImageSet, forget_class: int,
                    seed: int = 0) -> float:
    """Linear-probe accuracy of the forgotten class vs the rest on penultimate features, both
    read from the holdout split (no model saw those rows)."""
    final_linear(model)  # fail before any work on a model without the hook
    feats = penultimate_features(model, holdout.images)
    is_k = holdout.labels.numpy() == forget_class
    return _probe_cv_accuracy(feats[is_k], feats[~is_k], seed)


def membership_probe_acc(model: torch.nn.Module, forget: ImageSet, holdout: ImageSet,
                         seed: int = 0) -> float:
    """Linear-probe accuracy of forget rows vs holdout rows: membership in the features.
    (Backdoors get no probe: a stamped patch is linearly visible in any model's features.)"""
    final_linear(model)
    return _probe_cv_accuracy(penultimate_features(model, forget.images),
                              penultimate_features(model, holdout.images), seed)


@dataclass(frozen=True)
class RelearnConfig:
    """One attack budget: `steps` plain SGD updates on all weights, each on the `shown`
    labelled forget samples next to `retain_per_step` fresh retain rows. The model stays in
    eval mode while its weights train: BatchNorm keeps the statistics the model was served
    with (re-estimating them on an attack batch moves the normalisation of every model, so
    the attack would measure the batch mix, not what the weights know). No momentum: with
    0.9 the class logit swings through the decision threshold and the metric jumps with the
    step count (tuning seed 100); lr 0.03 already collapses ResNet-8 under frozen BN. The
    budget (steps x shown) is what forgetflow.bench.depth sweeps; these defaults are the
    fallback where none was calibrated. `cost`: forward/backward rows the attack pays for."""

    steps: int = 40
    shown: int = 32
    lr: float = 0.01
    retain_per_step: int = 64
    momentum: float = 0.0

    @property
    def cost(self) -> int:
        return self.steps * (self.shown + self.retain_per_step)


@dataclass(frozen=True)
class RelearnResult:
    """What one attack measured at `steps`. `metric` is what the bench compares:
    class requests: (held-class recall + other-class test accuracy) / 2, so predicting the
    class for everything scores 0.5 at most, never more than a model that knows the class;
    samples: accuracy on the forget rows not shown; backdoor: ASR on stamped non-target test
    images (`clean_acc` beside it: an attack that breaks the model is no relearning)."""

    steps: int
    metric: float
    held_acc: float | None = None
    other_acc: float | None = None
    clean_acc: float | None = None


def _eval_rows(test: ImageSet, keep: torch.Tensor, seed: int) -> ImageSet:
    """At most EVAL_ROWS of the kept test rows, the same seeded subset for every model."""
    rows = torch.nonzero(keep).flatten().numpy()
    if len(rows) > EVAL_ROWS:
        rows = np.sort(np.random.default_rng([seed, 11]).choice(rows, EVAL_ROWS, replace=False))
    return test.take(rows)


def _measure(net: torch.nn.Module, steps: int, held: ImageSet, test: ImageSet,
             trigger: TriggerSpec | None, forget_class: int | None, seed: int) -> RelearnResult:
    """The scenario's metric on the attacked network (eval mode, no gradients)."""
    if trigger is not None:
        clean = _eval_rows(test, torch.ones(len(test), dtype=torch.bool), seed)
        asr = attack_success_rate(net, _eval_rows(test, test.labels != trigger.target, seed),
                                  trigger)
        return RelearnResult(steps, asr, clean_acc=accuracy(predict_logits(net, clean.images),
                                                            clean.labels))
    held_acc = accuracy(predict_logits(net, held.images), held.labels)
    if forget_class is None:
        return RelearnResult(steps, held_acc, held_acc=held_acc)
    others = _eval_rows(test, test.labels != forget_class, seed)
    other_acc = accuracy(predict_logits(net, others.images), others.labels)
    return RelearnResult(steps, (held_acc + other_acc) / 2, held_acc, other_acc)


def relearn_curve(model: torch.nn.Module, forget: ImageSet, retain: ImageSet, test: ImageSet,
                  trigger: TriggerSpec | None = None, seed: int = 0,
                  cfg: RelearnConfig = RelearnConfig(), forget_class: int | None = None,
                  at: tuple[int, ...] | None = None) -> list[RelearnResult]:
    """The attack of `cfg`, measured after each step count in `at` (default: cfg.steps). A
    shorter budget is exactly a prefix of a longer one (constant lr, same seeded draws), so a
    sweep over steps runs once. Empty when the forget set is too small to hold rows back."""
    at = tuple(sorted(set(at or (cfg.steps,))))
    k = min(cfg.shown, len(forget) - (0 if trigger is not None else 1))
    if k < 1 or at[0] < 0:
        return []
    gen = torch.Generator().manual_seed(10_000 + seed)
    order = torch.randperm(len(forget), generator=gen)
    held = forget.take(order[k:].numpy())
    device = next(model.parameters()).device
    net = copy.deepcopy(model).eval()  # eval mode throughout: BN statistics stay frozen
    for p in net.parameters():
        p.requires_grad_(True)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    xs, ys = to_float(forget.images[order[:k]]).to(device), forget.labels[order[:k]].to(device)
    out = [_measure(net, 0, held, test, trigger, forget_class, seed)] if at[0] == 0 else []
    for step in range(1, at[-1] + 1):
        ri = torch.randint(0, len(retain), (cfg.retain_per_step,), generator=gen)
        x = torch.cat([xs, to_float(retain.images[ri]).to(device)])
        y = torch.cat([ys, retain.labels[ri].to(device)])
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step in at:
            out.append(_measure(net, step, held, test, trigger, forget_class, seed))
    return out


def relearn_attack(model: torch.nn.Module, forget: ImageSet, retain: ImageSet, test: ImageSet,
                   trigger: TriggerSpec | None = None, seed: int = 0,
                   cfg: RelearnConfig = RelearnConfig(),
                   forget_class: int | None = None) -> RelearnResult | None:
    """One attack at `cfg`'s budget with every number it measured (None: forget set too
    small)."""
    res = relearn_curve(model, forget, retain, test, trigger, seed, cfg, forget_class)
    return res[0] if res else None


def relearn_acc(model: torch.nn.Module, forget: ImageSet, retain: ImageSet, test: ImageSet,
                trigger: TriggerSpec | None = None, seed: int = 0,
                cfg: RelearnConfig = RelearnConfig(), forget_class: int | None = None) -> float:
    """The attack's metric (RelearnResult.metric): backdoor ASR when `trigger` is given, the
    balanced class metric when `forget_class` is, else accuracy on the forget rows not shown;
    NaN when the forget set is too small."""
    res = relearn_attack(model, forget, retain, test, trigger, seed, cfg, forget_class)
    return float("nan") if res is None else res.metric
