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

from forgetflow.core.unlearn.base import UnlearnTask
from forgetflow.core.unlearn.dm_streams import Encoder, Streams, logits_of, subsample

REFERENCE_CAP = 4000  # third-party samples used for reference statistics


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
    """Per-forget-sample targets, fixed before the first update."""

    scenario: str
    phi_targets: torch.Tensor | None = None   # samples: target phi per forget sample
    soft_targets: torch.Tensor | None = None  # class/backdoor: target distribution per sample
    labels: torch.Tensor | None = None
    temperature: float = 1.0

    def match_loss(self, logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if self.scenario == "samples":
            phi = confidence_logit(logits, self.labels.to(logits.device)[idx])
            return F.smooth_l1_loss(phi, self.phi_targets.to(logits.device)[idx])
        q = self.soft_targets.to(logits.device)[idx]
        return F.kl_div(F.log_softmax(logits, 1), q, reduction="batchmean")


def build_targets(task: UnlearnTask, encoder: Encoder, original_net: torch.nn.Module,
                  streams: Streams, device: torch.device) -> MatchTargets:
    """The original's outputs on the forget set and on a third-party reference sample."""
    third, labels = task.third_party, task.third_party.labels.numpy()

    def original_logits(images: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return logits_of(original_net, encoder.pool(images, y), device)

    if task.scenario == "samples":
        ref = subsample(third, REFERENCE_CAP, task.seed)
        ref_phi = confidence_logit(original_logits(ref.images, ref.labels), ref.labels).numpy()
        lf = logits_of(original_net, streams.forget, device)
        f_phi = confidence_logit(lf, task.forget.labels).numpy()
        targets = quantile_targets(f_phi, task.forget.labels.numpy(), ref_phi, ref.labels.numpy())
        return MatchTargets("samples", phi_targets=torch.from_numpy(targets).float(),
                            labels=task.forget.labels)
    if task.scenario == "class":
        k = int(task.forget_class)
        ref = third.where(labels == k)
        lf = logits_of(original_net, streams.forget, device)
    else:  # backdoor: triggered inputs must look like clean unseen non-target inputs
        k = int(task.trigger.target)
        ref = subsample(third.where(labels != k), REFERENCE_CAP, task.seed)
        spec = task.trigger
        r, c = spec.origin(third.images.shape[2], third.images.shape[3])
        fill = third.images[:, :, r: r + spec.size, c: c + spec.size].float().mean(0)
        clean_look = inpaint_trigger(task.forget.images, task, fill.round().to(torch.uint8))
        lf = original_logits(clean_look, task.forget.labels)
    ref_logits = original_logits(ref.images, ref.labels) if len(ref) else None
    ref_conf = float(masked_softmax(ref_logits, k).max(1).values.mean()) if len(ref) else 0.9
    temperature = calibrate_temperature(lf, k, ref_conf)
    return MatchTargets(task.scenario, soft_targets=masked_softmax(lf, k, temperature),
                        temperature=temperature)


def excess_z(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    """One-sided two-proportion z statistic of rate a above rate b (pooled variance): how many
    standard errors the forget set's rate exceeds the reference's. 0 when both are 0 or 1."""
    if n_a == 0 or n_b == 0:
        return 0.0
    pooled = (hits_a + hits_b) / (n_a + n_b)
    se = (pooled * (1 - pooled) * (1 / n_a + 1 / n_b)) ** 0.5
    return 0.0 if se == 0 else (hits_a / n_a - hits_b / n_b) / se


def _count(mask: torch.Tensor) -> tuple[int, int]:
    return int(mask.sum()), int(mask.numel())


@torch.no_grad()
def stop_statistic(net: torch.nn.Module, task: UnlearnTask, streams: Streams,
                   probe: torch.Tensor, cfg, device: torch.device) -> tuple[float, float, bool]:
    """The stopping test (docs/method.md §5): does the forget probe behave like the reference
    third-party samples, scored by the *current* model, up to `stop_z` standard errors, while
    the model still agrees with the original on them (utility restored by replay)?
    Returns (z statistic, agreement, done)."""
    logits_f = logits_of(net, streams.forget, device, probe)
    y_f = streams.forget.y[probe]
    rows = torch.arange(min(len(streams.anchor), cfg.probe_size))
    logits_u = logits_of(net, streams.anchor, device, rows)
    y_u = streams.anchor.y[rows]
    pred_f, pred_u = logits_f.argmax(1), logits_u.argmax(1)
    ref_pred = streams.anchor_ref[rows].argmax(1)
    keep = ref_pred != task.forget_class if task.scenario == "class" else slice(None)
    agreement = float((pred_u == ref_pred)[keep].float().mean())
    if task.scenario == "samples":
        # Memorisation shows in the tail (samples unseen data gets wrong), which a rank test
        # over the whole phi distribution barely sees: compare the error rates directly.
        z = excess_z(*_count(pred_f == y_f), *_count(pred_u == y_u))
    elif task.scenario == "class":
        # forgotten = predicted k no more often than unseen samples of other classes are
        k = task.forget_class
        z = excess_z(*_count(pred_f == k), *_count(pred_u[y_u != k] == k))
    else:
        # triggered inputs (stamped unseen, and the forget set) hit the target no more often
        # than the same unseen images do clean
        k = task.trigger.target
        clean = rows[y_u != k]
        base = _count(pred_u[y_u != k] == k)
        stamped = logits_of(net, streams.anchor_stamped, device, clean).argmax(1) == k
        z = max(excess_z(*_count(stamped), *base), excess_z(*_count(pred_f == k), *base))
    return z, agreement, z <= cfg.stop_z and agreement >= cfg.min_agreement
