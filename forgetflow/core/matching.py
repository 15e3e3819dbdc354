"""The distribution-matching math dm's targets and stopping test are made of (docs/method.md
§2-§5): pure functions of logits and counts, shared by every scenario's hooks
(forgetflow/core/scenarios) and by the method (forgetflow/core/unlearn/dm_reference.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from forgetflow.core.data.tensors import ImageSet
    from forgetflow.core.triggers import TriggerSpec

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


def _ranks(values: np.ndarray) -> np.ndarray:
    """0-based rank of each value (ties broken by position)."""
    return np.argsort(np.argsort(values))


def quantile_targets(forget_phi: np.ndarray, forget_y: np.ndarray, ref_phi: np.ndarray,
                     ref_y: np.ndarray, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Per class, the monotone (1-D optimal transport) map from the forget set's phi
    distribution onto the reference's: the i-th ranked forget sample gets the reference's
    quantile at the same level. `noise` > 0 blurs the coupling (§12) among the rows the exact
    map sends to a correct prediction (target > 0): their normal scores get seeded
    N(0, noise^2) jitter and those rows' targets are handed out again in the jittered order, so
    the targets keep exactly the reference's distribution, the misclassified tail stays the
    exact map's, and which confident row gets which quantile varies from run to run."""
    from scipy.special import ndtri

    rng = np.random.default_rng(seed)
    targets = np.empty_like(forget_phi)
    for c in np.unique(forget_y):
        rows = np.flatnonzero(forget_y == c)
        pool = ref_phi[ref_y == c] if (ref_y == c).sum() >= 20 else ref_phi
        levels = (_ranks(forget_phi[rows]) + 0.5) / len(rows)
        exact = np.quantile(pool, levels)
        if noise > 0:
            up = np.flatnonzero(exact > 0)
            score = ndtri(levels[up]) + noise * rng.standard_normal(len(up))
            exact[up] = np.sort(exact[up])[_ranks(score)]
        targets[rows] = exact
    return targets


def inpaint_trigger(images: torch.Tensor, spec: TriggerSpec, fill: torch.Tensor) -> torch.Tensor:
    """Replace the trigger region by the third-party mean patch (the clean look of that spot)."""
    row, col = spec.origin(images.shape[2], images.shape[3])
    out = images.clone()
    out[:, :, row: row + spec.size, col: col + spec.size] = fill
    return out


@dataclass
class MatchTargets:
    """Per-forget-sample targets, fixed before the first update."""

    phi_targets: torch.Tensor | None = None   # samples: target phi per forget sample
    soft_targets: torch.Tensor | None = None  # class/backdoor: target distribution per sample
    labels: torch.Tensor | None = None
    temperature: float = 1.0

    def match_loss(self, logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if self.phi_targets is not None:
            phi = confidence_logit(logits, self.labels.to(logits.device)[idx])
            return F.smooth_l1_loss(phi, self.phi_targets.to(logits.device)[idx])
        q = self.soft_targets.to(logits.device)[idx]
        return F.kl_div(F.log_softmax(logits, 1), q, reduction="batchmean")


def excess_z(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    """One-sided two-proportion z statistic of rate a above rate b (pooled variance): how many
    standard errors the forget set's rate exceeds the reference's. 0 when both are 0 or 1."""
    if n_a == 0 or n_b == 0:
        return 0.0
    pooled = (hits_a + hits_b) / (n_a + n_b)
    se = (pooled * (1 - pooled) * (1 / n_a + 1 / n_b)) ** 0.5
    return 0.0 if se == 0 else (hits_a / n_a - hits_b / n_b) / se


@dataclass(frozen=True)
class OriginalOutputs:
    """What a scenario may read of the *original* model while building dm's targets: its
    logits on any images (through the method's frozen encoder), on the forget rows, and a
    seeded subsample of a pool."""

    logits: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    forget_logits: Callable[[], torch.Tensor]
    subsample: Callable[[ImageSet, int], ImageSet]
    coupling_noise: float = 0.0  # dm's `coupling_noise` (§12), seeded by `seed`
    seed: int = 0


@dataclass(frozen=True)
class StopScores:
    """The current model's predictions the stopping test compares: on the forget probe and
    on the reference (anchor) rows, plus a scorer of the anchor rows with a trigger stamped."""

    pred_forget: torch.Tensor
    labels_forget: torch.Tensor
    pred_unseen: torch.Tensor
    labels_unseen: torch.Tensor
    stamped_pred: Callable[[torch.Tensor], torch.Tensor]  # anchor row mask → predictions


def count(mask: torch.Tensor) -> tuple[int, int]:
    """(hits, n) of a boolean tensor: the arguments `excess_z` takes per rate."""
    return int(mask.sum()), int(mask.numel())


def soft_targets(forget_logits: torch.Tensor, masked: int,
                 reference_logits: torch.Tensor | None) -> MatchTargets:
    """Class and backdoor targets: the original's distribution with `masked` removed, its
    temperature set so the mean top-1 confidence equals the reference rows' (§3)."""
    ref_conf = 0.9 if reference_logits is None or not len(reference_logits) else float(
        masked_softmax(reference_logits, masked).max(1).values.mean())
    temperature = calibrate_temperature(forget_logits, masked, ref_conf)
    return MatchTargets(soft_targets=masked_softmax(forget_logits, masked, temperature),
                        temperature=temperature)
