"""Depth attacks of DESIGN §4: is the knowledge gone from the weights, or only from the outputs?

Output metrics cannot tell forgetting from hiding (a model that masks one logit passes them).
Two attacks look underneath, each run identically on every method and on Retrain:
- `relearn_acc`: forget accuracy (backdoors: ASR) after a fixed, short relearning attack on all
  weights from a small labelled sample of the forget set mixed with retained data. Hidden
  knowledge comes back within a few steps; knowledge that was never there does not.
- `probe_acc`: a linear probe on penultimate features. Class requests: forgotten class vs rest
  on unseen (holdout) data; sample requests: forget samples vs holdout samples (membership).
"""

from __future__ import annotations

import copy
import math
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


def probe_acc(model: torch.nn.Module, scenario: str, forget: ImageSet, holdout: ImageSet,
              forget_class: int | None = None, seed: int = 0) -> float | None:
    """Linear-probe accuracy on penultimate features (None for backdoors: a stamped patch is
    linearly visible in any model's features, so the probe would say nothing about forgetting).
    Class: forgotten class vs the rest, both from the holdout split (no model saw them).
    Samples/subject: forget samples vs holdout samples, i.e. membership in the features."""
    final_linear(model)  # fail before any work on a model without the hook
    if scenario == "backdoor":
        return None
    feats = penultimate_features(model, holdout.images)
    if scenario == "class":
        is_k = holdout.labels.numpy() == forget_class
        return _probe_cv_accuracy(feats[is_k], feats[~is_k], seed)
    return _probe_cv_accuracy(penultimate_features(model, forget.images), feats, seed)


@dataclass(frozen=True)
class RelearnConfig:
    """The fixed attack: `steps` SGD (momentum 0.9) updates on all weights; each step fits the
    whole relearn sample (max(min_samples, fraction of the forget set)) next to as many retain
    rows (1:1: for a class request the retain set holds no sample of the class, so a
    retain-heavy mix would erase the class from every model, the original included). SGD, not
    Adam: Adam's sign-like first steps move every weight by ~lr and damage even the original,
    while SGD steps follow the relearning gradient's size."""

    steps: int = 25
    lr: float = 0.01
    fraction: float = 0.01
    min_samples: int = 10


def relearn_acc(model: torch.nn.Module, forget: ImageSet, retain: ImageSet, test: ImageSet,
                trigger: TriggerSpec | None = None, seed: int = 0,
                cfg: RelearnConfig = RelearnConfig()) -> float:
    """Forget accuracy on the forget rows *not* used by the attack after relearning; for
    backdoors (trigger given) the ASR on stamped test images after relearning from a few
    stamped samples with the poisoned label."""
    if len(forget) <= cfg.min_samples:
        return float("nan")
    gen = torch.Generator().manual_seed(10_000 + seed)
    order = torch.randperm(len(forget), generator=gen)
    k = min(len(forget) - 1, max(cfg.min_samples, math.ceil(cfg.fraction * len(forget))))
    shown, held = order[:k], order[k:]
    device = next(model.parameters()).device
    net = copy.deepcopy(model).train()
    for p in net.parameters():
        p.requires_grad_(True)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.9)
    xs, ys = to_float(forget.images[shown]).to(device), forget.labels[shown].to(device)
    for _ in range(cfg.steps):
        ri = torch.randint(0, len(retain), (k,), generator=gen)
        x = torch.cat([xs, to_float(retain.images[ri]).to(device)])
        y = torch.cat([ys, retain.labels[ri].to(device)])
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    if trigger is not None:
        return attack_success_rate(net, test, trigger)
    rest = forget.take(held.numpy())
    return accuracy(predict_logits(net, rest.images), rest.labels)
