"""Retrain-free depth checks for the production gate: is the knowledge gone from the weights,
or only from the outputs?

A Retrain is what unlearning avoids, so each check compares the unlearned model with
something it never learned, under one identical attack (docs/method.md §11):

- samples / subject: relearn-vs-unseen. One short fine-tune on `shown` forget rows and, from
  the same model, one on as many unseen holdout rows of the same classes (each next to retain
  rows). Forgotten rows must not come back faster than unseen ones (p_y: the true-class
  probability, averaged over the rows the attack did not show):
      gap = p_y(held forget rows | attack on forget) - p_y(held unseen rows | attack on unseen)
  must stay below `max_relearn_gap` plus sampling noise (a one-sided 95% margin).
- backdoor: re-implant-vs-control. The removed trigger and a control trigger the model never
  saw (the same patch mirrored to the opposite corner) are each implanted with the same attack
  from stamped clean holdout images; gap = ASR(removed) - ASR(control) <= `max_reimplant_gap`.
- class: few-shot recoverability from the features. With `shots` labelled images per class, a
  nearest-centroid reader on penultimate features recovers the forgotten class from the
  candidate and from the parent; the class's drop must exceed the drop on the remaining
  classes by `min_class_feature_drop`. A logit mask, or anything that changes the last layer
  only, leaves the features as they were: drop 0.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from forgetflow.core.attacks import penultimate_features
from forgetflow.core.data.tensors import ImageSet, to_float
from forgetflow.core.metrics import (
    attack_success_rate,
    predict_logits,
    true_class_confidence,
)
from forgetflow.core.params import DepthGateParams
from forgetflow.core.triggers import TriggerError, TriggerSpec, stamp

Z_ONE_SIDED = 1.645  # one-sided 95%: a gap within noise of the limit is not a failure


@dataclass(frozen=True)
class DepthResult:
    """One check's evidence: the statistic, the two sides it compares, and its noise."""

    check: str
    value: float  # the gap (samples, backdoor) or the excess drop (class)
    forgotten: float  # the forgotten side after the attack
    control: float  # the unseen / control side after the attack
    noise: float = 0.0  # standard error of `value` (0 where not estimated)
    rows: int = 0

    def as_dict(self) -> dict[str, float | int | str]:
        return {"check": self.check, "value": self.value, "forgotten": self.forgotten,
                "control": self.control, "noise": self.noise, "rows": self.rows}


def relearned(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, retain: ImageSet,
              steps: int, lr: float, seed: int, retain_per_step: int = 64,
              momentum: float = 0.0) -> torch.nn.Module:
    """A copy fine-tuned on all of (x, y) plus max(len(y), retain_per_step) fresh retain rows
    per step (a few shown rows alone would overshoot to predicting their label everywhere), all
    weights, SGD (momentum makes the result swing with the step count); BatchNorm statistics
    frozen (eval mode): weights change only."""
    gen = torch.Generator().manual_seed(20_000 + seed)
    device = next(model.parameters()).device
    net = copy.deepcopy(model).eval()
    for p in net.parameters():
        p.requires_grad_(True)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    x, y = x.to(device), y.to(device)
    for _ in range(steps):
        ri = torch.randint(0, len(retain), (max(len(y), retain_per_step),), generator=gen)
        xb = torch.cat([x, to_float(retain.images[ri]).to(device)])
        yb = torch.cat([y, retain.labels[ri].to(device)])
        loss = F.cross_entropy(net(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


def matched_unseen(forget: ImageSet, pool: ImageSet, seed: int) -> ImageSet:
    """Unseen rows with the forget set's class mix (as many per class as the pool allows)."""
    rng, picks, pool_labels = np.random.default_rng(seed), [], pool.labels.numpy()
    for label, count in zip(*np.unique(forget.labels.numpy(), return_counts=True), strict=True):
        rows = np.flatnonzero(pool_labels == label)
        picks.append(rng.choice(rows, min(len(rows), int(count)), replace=False))
    return pool.take(np.sort(np.concatenate(picks))) if picks else pool.take(np.array([], int))


class Unpowered(ValueError):
    """Too few rows for the retrain-free comparison to tell forgetting from doing nothing."""


def _split(data: ImageSet, shown: int, seed: int) -> tuple[ImageSet, ImageSet]:
    order = np.random.default_rng(seed).permutation(len(data))
    return data.take(order[:shown]), data.take(order[shown:])


def _mean_var(model: torch.nn.Module, rows: ImageSet) -> tuple[float, float, int]:
    conf = true_class_confidence(predict_logits(model, rows.images), rows.labels)
    return float(conf.mean()), float(conf.var(ddof=1)), len(conf)


def samples_depth(model: torch.nn.Module, forget: ImageSet, unseen_pool: ImageSet,
                  retain: ImageSet, budget: DepthGateParams, seed: int = 0) -> DepthResult:
    """Relearn-vs-unseen: the same attack from forget rows and from unseen rows, compared by
    the mean true-class probability on the rows each attack did not show (a continuous score:
    far more power on a few hundred rows than accuracy, which a memorised row and an unseen
    one often share). The same comparison before any attack also counts, and the larger gap
    decides: an attack that lifts unseen rows can shrink the contrast of rows that were simply
    never forgotten, while one that undoes a suppression widens it."""
    unseen = matched_unseen(forget, unseen_pool, seed)
    n = min(len(forget), len(unseen))
    if n < budget.min_rows:
        raise Unpowered(f"{n} forget rows with unseen counterparts: fewer than "
                        f"min_rows ({budget.min_rows}), the comparison has no power")
    k = min(budget.max_shown, max(budget.min_shown, math.ceil(budget.shown_fraction * n)))
    k = min(k, n // 2)
    before, after = [], []
    for data in (forget, unseen):
        shown, held = _split(data, k, seed)
        before.append(_mean_var(model, held))
        net = relearned(model, to_float(shown.images), shown.labels, retain, budget.steps,
                        budget.lr, seed, budget.retain_per_step, budget.momentum)
        after.append(_mean_var(net, held))
    gaps = []
    for (mf, vf, nf), (mu, vu, nu) in (before, after):
        gaps.append((mf - mu, math.sqrt(vf / nf + vu / nu), mf, mu))
    gap, noise, fm, um = max(gaps, key=lambda g: g[0] - g[1])
    return DepthResult("relearn_gap", gap, fm, um, noise, n)


def control_trigger(trigger: TriggerSpec, image_shape: tuple[int, int, int]) -> TriggerSpec:
    """The same patch at the mirrored position (opposite corner): a trigger nobody planted."""
    _, h, w = image_shape
    row, col = trigger.origin(h, w)
    mirrored = (h - trigger.size - row, w - trigger.size - col)
    if abs(mirrored[0] - row) < trigger.size and abs(mirrored[1] - col) < trigger.size:
        mirrored = (trigger.margin, trigger.margin) if row > h // 2 or col > w // 2 else \
            (h - trigger.size - trigger.margin, w - trigger.size - trigger.margin)
    control = replace(trigger, position=mirrored)
    try:
        control.origin(h, w)
    except TriggerError as exc:  # pragma: no cover - mirrored positions always fit
        raise ValueError(f"no control trigger fits {h}x{w} images: {exc}") from exc
    return control


def backdoor_depth(model: torch.nn.Module, trigger: TriggerSpec, clean_pool: ImageSet,
                   retain: ImageSet, test: ImageSet, budget: DepthGateParams,
                   seed: int = 0) -> DepthResult:
    """Re-implant-vs-control: ASR after implanting the removed trigger vs a never-seen one."""
    clean = clean_pool.where(clean_pool.labels.numpy() != trigger.target)
    k = min(budget.implant_shown, len(clean))
    if k < budget.min_shown:
        raise ValueError(f"{len(clean)} clean unseen images: too few to implant a trigger")
    control = control_trigger(trigger, tuple(clean.images.shape[1:]))
    asr = np.zeros((budget.implant_repeats, 2))
    for r in range(budget.implant_repeats):  # a few draws: one attack's ASR swings widely
        shown = clean.take(np.random.default_rng([seed, r]).choice(len(clean), k, False))
        for i, spec in enumerate((trigger, control)):
            x = to_float(stamp(shown.images, spec))
            y = torch.full((k,), spec.target, dtype=torch.long)
            net = relearned(model, x, y, retain, budget.implant_steps, budget.implant_lr,
                            seed + r, budget.retain_per_step, budget.momentum)
            asr[r, i] = attack_success_rate(net, test, spec)
    gaps = asr[:, 0] - asr[:, 1]
    # the attack's own spread across draws dominates the binomial noise of one ASR
    noise = float(gaps.std(ddof=1) / math.sqrt(len(gaps))) if len(gaps) > 1 else 0.0
    asr = asr.mean(0)
    return DepthResult("reimplant_gap", float(asr[0] - asr[1]), float(asr[0]), float(asr[1]),
                       noise, k)


def few_shot_recall(features: np.ndarray, labels: np.ndarray, reference: np.ndarray,
                    reference_labels: np.ndarray, shots: int, repeats: int,
                    seed: int) -> np.ndarray:
    """Per class, the share of `features` rows a nearest-centroid reader built from `shots`
    reference rows per class assigns to their class (mean over `repeats` draws; NaN for a
    class with no row in `features`)."""
    classes = np.unique(reference_labels)
    hits = np.zeros(len(classes))
    for r in range(repeats):
        rng = np.random.default_rng([seed, r])
        cents = np.stack([reference[rng.choice(np.flatnonzero(reference_labels == c),
                                               shots, replace=False)].mean(0) for c in classes])
        d = (features ** 2).sum(1)[:, None] - 2 * features @ cents.T + (cents ** 2).sum(1)
        pred = classes[d.argmin(1)]
        hits += np.asarray([np.mean(pred[labels == c] == c) if (labels == c).any() else np.nan
                            for c in classes])
    return hits / repeats


def class_depth(model: torch.nn.Module, parent: torch.nn.Module, forget_class: int,
                forget: ImageSet, retain: ImageSet, unseen_pool: ImageSet,
                budget: DepthGateParams, seed: int = 0) -> DepthResult:
    """Excess drop of the forgotten class's few-shot recall vs the parent's features, over the
    mean drop of the remaining classes. The class's shots come from half of its forget rows
    (what an attacker holding some of them would use); its recall is read on the other half
    plus its unseen holdout rows, the other classes' on their holdout rows. Parent and
    candidate read the very same rows, so the comparison is paired."""
    if len(forget) < 2 * budget.shots:
        raise ValueError(f"{len(forget)} images of the forgotten class: fewer than 2 x shots "
                         f"({budget.shots}), too few to test its features")
    order = np.random.default_rng(seed).permutation(len(forget))
    shot_pool, held = forget.take(order[: len(order) // 2]), forget.take(order[len(order) // 2:])
    evaluated = ImageSet(torch.cat([unseen_pool.images, held.images]),
                         torch.cat([unseen_pool.labels, held.labels]),
                         np.concatenate([unseen_pool.ids, held.ids]))
    labels = evaluated.labels.numpy()
    rng = np.random.default_rng(seed)
    ref_rows = retain.take(np.sort(rng.choice(len(retain), min(len(retain), 5000), False)))
    keep = [c for c in np.unique(ref_rows.labels.numpy())
            if c != forget_class and int((ref_rows.labels.numpy() == c).sum()) >= budget.shots]
    ref_rows = ref_rows.where(np.isin(ref_rows.labels.numpy(), keep))
    ref_y = np.concatenate([ref_rows.labels.numpy(), np.full(len(shot_pool), forget_class)])
    recall = []
    for net in (parent, model):
        ref = np.concatenate([penultimate_features(net, ref_rows.images),
                              penultimate_features(net, shot_pool.images)])
        scale = float(ref.std()) + 1e-8
        feats = penultimate_features(net, evaluated.images) / scale
        recall.append(few_shot_recall(feats, labels, ref / scale, ref_y, budget.shots,
                                      budget.repeats, seed))
    is_k = np.unique(ref_y) == forget_class
    drop = recall[0] - recall[1]
    value = float(drop[is_k][0] - np.nanmean(drop[~is_k]))
    return DepthResult("class_feature_drop", value, float(recall[1][is_k][0]),
                       float(recall[0][is_k][0]), 0.0, int((labels == forget_class).sum()))
