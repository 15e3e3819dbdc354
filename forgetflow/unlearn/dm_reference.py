"""Reference distributions and the stopping test for `dm` (docs/method.md §2-§4).

Everything here is computed once from the *original* model, before any update: the reference
is what a model that never saw the forget set does on unseen data, and the original model on
third-party samples is exactly such a model for those samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from forgetflow.data.tensors import ImageSet
from forgetflow.metrics import predict_logits
from forgetflow.triggers import stamp
from forgetflow.unlearn.base import UnlearnTask

REFERENCE_CAP = 4000  # third-party samples used for reference statistics
PROBE_CAP = 1024  # third-party samples in the stopping test's utility probe


def confidence_logit(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """phi(x, y) = z_y - logsumexp_{k != y} z_k = logit of p(y|x); unsaturated, unlike p."""
    own = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], float("-inf"))
    return own - torch.logsumexp(others, 1)


def masked_softmax(logits: torch.Tensor, masked: int, temperature: float = 1.0) -> torch.Tensor:
    z = logits.clone()
    z[:, masked] = float("-inf")
    return F.softmax(z / temperature, 1)


def calibrate_temperature(logits: torch.Tensor, masked: int, target_conf: float) -> float:
    """Bisection on log T so the mean top-1 probability of the masked targets equals the
    reference's: first-moment matching of the confidence distribution."""
    lo, hi = -3.0, 4.0
    for _ in range(30):
        mid = (lo + hi) / 2
        conf = float(masked_softmax(logits, masked, float(np.exp(mid))).max(1).values.mean())
        lo, hi = (mid, hi) if conf > target_conf else (lo, mid)
    return float(np.exp((lo + hi) / 2))


def quantile_targets(forget_phi: np.ndarray, forget_y: np.ndarray, ref_phi: np.ndarray,
                     ref_y: np.ndarray) -> np.ndarray:
    """Per class, the monotone (1-D optimal transport) map from the forget set's phi
    distribution onto the reference's: the i-th ranked forget sample gets the reference's
    quantile at the same level."""
    targets = np.empty_like(forget_phi)
    for c in np.unique(forget_y):
        rows = np.flatnonzero(forget_y == c)
        pool = ref_phi[ref_y == c] if (ref_y == c).sum() >= 20 else ref_phi
        levels = (np.argsort(np.argsort(forget_phi[rows])) + 0.5) / len(rows)
        targets[rows] = np.quantile(pool, levels)
    return targets


def inpaint_trigger(images: torch.Tensor, task: UnlearnTask, fill: torch.Tensor) -> torch.Tensor:
    """Replace the trigger region by the third-party mean patch (the clean look of that spot)."""
    spec = task.trigger
    row, col = spec.origin(images.shape[2], images.shape[3])
    out = images.clone()
    out[:, :, row: row + spec.size, col: col + spec.size] = fill
    return out


@dataclass
class MatchTargets:
    """Per-forget-sample targets plus the third-party set used as the utility anchor."""

    scenario: str
    anchor: ImageSet
    phi_targets: torch.Tensor | None = None   # samples: target phi per forget sample
    soft_targets: torch.Tensor | None = None  # class/backdoor: target distribution per sample
    labels: torch.Tensor | None = None
    temperature: float = 1.0
    anchor_pred: torch.Tensor | None = None  # original's argmax on the anchor probe

    def __post_init__(self) -> None:
        self.anchor_probe = self.anchor.take(np.arange(min(len(self.anchor), PROBE_CAP)))

    def match_loss(self, logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if self.scenario == "samples":
            phi = confidence_logit(logits, self.labels.to(logits.device)[idx])
            return F.smooth_l1_loss(phi, self.phi_targets.to(logits.device)[idx])
        q = self.soft_targets.to(logits.device)[idx]
        return F.kl_div(F.log_softmax(logits, 1), q, reduction="batchmean")


def _subsample(data: ImageSet, cap: int, seed: int) -> ImageSet:
    if len(data) <= cap:
        return data
    return data.take(np.sort(np.random.default_rng(seed).choice(len(data), cap, replace=False)))


def build_targets(task: UnlearnTask) -> MatchTargets:
    """One forward pass of the original over the forget set and a third-party sample."""
    targets = _build_targets(task)
    targets.anchor_pred = predict_logits(task.model, targets.anchor_probe.images).argmax(1)
    return targets


def _build_targets(task: UnlearnTask) -> MatchTargets:
    model, third = task.model, task.third_party
    labels = third.labels.numpy()
    lf_orig = None
    if task.scenario == "samples":
        ref = _subsample(third, REFERENCE_CAP, task.seed)
        ref_phi = confidence_logit(predict_logits(model, ref.images), ref.labels).numpy()
        lf_orig = predict_logits(model, task.forget.images)
        f_phi = confidence_logit(lf_orig, task.forget.labels).numpy()
        targets = quantile_targets(f_phi, task.forget.labels.numpy(), ref_phi, ref.labels.numpy())
        return MatchTargets("samples", third, phi_targets=torch.from_numpy(targets).float(),
                            labels=task.forget.labels)
    if task.scenario == "class":
        k = int(task.forget_class)
        ref = third.where(labels == k)
        anchor = third.where(labels != k)
        source = task.forget.images
    else:  # backdoor: triggered inputs must look like clean unseen non-target inputs
        k = int(task.trigger.target)
        ref = _subsample(third.where(labels != k), REFERENCE_CAP, task.seed)
        anchor = third
        spec = task.trigger
        r, c = spec.origin(third.images.shape[2], third.images.shape[3])
        fill = third.images[:, :, r: r + spec.size, c: c + spec.size].float().mean(0)
        source = inpaint_trigger(task.forget.images, task, fill.round().to(torch.uint8))
    ref_logits = predict_logits(model, ref.images)
    ref_conf = float(masked_softmax(ref_logits, k).max(1).values.mean()) if len(ref) else 0.9
    lf_orig = predict_logits(model, source)
    temperature = calibrate_temperature(lf_orig, k, ref_conf)
    return MatchTargets(task.scenario, anchor, soft_targets=masked_softmax(lf_orig, k, temperature),
                        temperature=temperature)


def mann_whitney_auc(a: torch.Tensor, b: torch.Tensor) -> float:
    """P(a > b) + 0.5 P(a = b): the AUC of the best threshold test on a scalar statistic."""
    both = torch.cat([a, b]).double()
    ranks = torch.empty_like(both)
    ranks[both.argsort()] = torch.arange(1, len(both) + 1, dtype=torch.double)
    return float((ranks[: len(a)].sum() - len(a) * (len(a) + 1) / 2) / (len(a) * len(b)))


@torch.no_grad()
def stop_statistic(model, task: UnlearnTask, targets: MatchTargets, probe: ImageSet,
                   cfg) -> tuple[float, float, bool]:
    """The stopping test: is the forget probe indistinguishable from unseen data, while the
    model still agrees with the original on unseen data (utility restored by replay)?
    Returns (forget statistic, agreement, done)."""
    logits_f = predict_logits(model, probe.images)
    anchor = targets.anchor_probe
    logits_u = predict_logits(model, anchor.images)
    keep = targets.anchor_pred != task.forget_class if task.scenario == "class" else slice(None)
    agreement = float((logits_u.argmax(1) == targets.anchor_pred)[keep].float().mean())
    if task.scenario == "samples":
        n = min(len(anchor), len(probe))
        phi_f = confidence_logit(logits_f, probe.labels)
        phi_u = confidence_logit(logits_u[:n], anchor.labels[:n])
        statistic = mann_whitney_auc(phi_f, phi_u)
        matched = statistic <= 0.5 + cfg.stop_margin
    elif task.scenario == "class":
        statistic = float((logits_f.argmax(1) == probe.labels).float().mean())
        matched = statistic <= cfg.class_forget_acc
    else:
        spec = task.trigger
        clean = anchor.where(anchor.labels.numpy() != spec.target)
        hits = predict_logits(model, stamp(clean.images, spec)).argmax(1) == spec.target
        asr = float(hits.float().mean())
        acc = float((logits_f.argmax(1) == probe.labels).float().mean())
        statistic = max(asr, acc)
        matched = statistic <= cfg.backdoor_asr
    return statistic, agreement, matched and agreement >= cfg.min_agreement
