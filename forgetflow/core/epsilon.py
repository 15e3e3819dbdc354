"""The forgetting quality F of the 2023 NeurIPS machine-unlearning challenge (DESIGN §4).

Protocol (Triantafillou et al., "Are we making progress in unlearning?", 2024; the challenge's
evaluation note, 2023), implemented here from its description:
1. From one original model, N unlearned models (unlearning seeds differ) and N retrained models
   (training seeds differ) are produced.
2. Per forget example, each model gives one number: the logit-scaled confidence of the true
   label, phi = log p_y - log(1 - p_y), computed stably as z_y - logsumexp_{k != y} z_k.
3. Attacks are threshold rules on phi ("unlearned if phi > t", and "< t"). Each gives a false
   positive rate (retrained called unlearned) and a false negative rate, and an epsilon at
   delta = 1e-5 via eps = max(log(1 - delta - FPR) - log FNR, log(1 - delta - FNR) - log FPR).
   An attack with FPR = FNR = 0 means eps = inf; one with exactly one zero rate is discarded.
   The example's eps is the maximum over attacks.
4. eps falls in 0.5-wide bins; bin b (eps in [0.5 b, 0.5 (b + 1))) scores 2^-b, eps = inf
   scores 0; F is the mean over forget examples (1 = indistinguishable from Retrain).
5. The challenge's final score is F x RA_U/RA_R x TA_U/TA_R (retain and test accuracy of the
   unlearned vs the retrained models, each averaged over the N models).

Our reading of step 3 (stated, since it decides what small N can show): the thresholds are
chosen on one half of each side's models (the one maximising 1 - FPR - FNR, per direction)
and their rates measured on the other half, both ways round. Taking the best of *all*
thresholds on the same samples instead scores identical distributions F ~ 0.2 at any N (the
maximum over thresholds finds noise); with the split, identical distributions approach F = 1
as N grows and separable ones give F = 0. With N = 8 the estimate is coarse, which is why the
benchmark reports Retrain's own F (a second set of retrained models) as the noise floor.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from forgetflow.core.unlearn.dm_reference import confidence_logit

DELTA = 1e-5
BIN_WIDTH = 0.5
MAX_EXAMPLES = 2000  # forget examples scored per run (seeded sample): the cost is per example


def logit_confidence(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """phi = z_y - logsumexp_{k != y} z_k, i.e. log(p_y / (1 - p_y)) without saturation (the
    same quantity dm matches for sample requests)."""
    return confidence_logit(logits, labels).numpy()


def epsilon_from_rates(fpr: float, fnr: float, delta: float = DELTA) -> float | None:
    """eps of one attack; None when the attack is discarded (exactly one rate is zero)."""
    if fpr == 0 and fnr == 0:
        return math.inf
    if fpr == 0 or fnr == 0:
        return None
    candidates = [math.log(a) - math.log(b) for a, b in ((1 - delta - fpr, fnr),
                                                        (1 - delta - fnr, fpr)) if a > 0]
    return max(candidates) if candidates else math.inf


def _rates(unlearned: np.ndarray, retrained: np.ndarray, t: float, sign: int):
    fpr = float(np.mean(sign * (retrained - t) > 0))
    fnr = float(np.mean(sign * (unlearned - t) <= 0))
    return fpr, fnr


def example_epsilon(unlearned: np.ndarray, retrained: np.ndarray, seed: int = 0,
                    delta: float = DELTA) -> float:
    """eps of one forget example from its phi under N unlearned and N retrained models."""
    if len(unlearned) < 2 or len(retrained) < 2:
        raise ValueError("the epsilon score needs at least 2 models on each side")
    rng = np.random.default_rng(seed)
    pu, pr = rng.permutation(len(unlearned)), rng.permutation(len(retrained))
    hu, hr = len(unlearned) // 2, len(retrained) // 2
    halves = [(unlearned[pu[:hu]], retrained[pr[:hr]]), (unlearned[pu[hu:]], retrained[pr[hr:]])]
    best = 0.0
    for (fit_u, fit_r), (ev_u, ev_r) in (halves, halves[::-1]):
        pooled = np.sort(np.concatenate([fit_u, fit_r]))
        thresholds = (pooled[1:] + pooled[:-1]) / 2
        for sign in (1, -1):
            advantage = [1 - sum(_rates(fit_u, fit_r, t, sign)) for t in thresholds]
            t = thresholds[int(np.argmax(advantage))]
            eps = epsilon_from_rates(*_rates(ev_u, ev_r, t, sign), delta)
            if eps is not None:
                best = max(best, eps)
    return best


def example_score(eps: float) -> float:
    """2^-bin with 0.5-wide bins; eps = inf scores 0."""
    return 0.0 if not math.isfinite(eps) else 2.0 ** -math.floor(max(eps, 0.0) / BIN_WIDTH)


def forgetting_quality(unlearned: np.ndarray, retrained: np.ndarray, seed: int = 0,
                       delta: float = DELTA) -> tuple[float, np.ndarray]:
    """F from phi matrices shaped [models, forget examples]; returns (F, per-example eps)."""
    if unlearned.ndim != 2 or unlearned.shape[1] != retrained.shape[1]:
        raise ValueError("phi matrices must be [models, examples] over the same examples")
    cols = np.arange(unlearned.shape[1])
    if len(cols) > MAX_EXAMPLES:
        cols = np.sort(np.random.default_rng(seed).choice(cols, MAX_EXAMPLES, replace=False))
    eps = np.asarray([example_epsilon(unlearned[:, j], retrained[:, j], seed + int(j), delta)
                      for j in cols])
    return float(np.mean([example_score(e) for e in eps])), eps


def final_score(quality: float, retain_acc_u: float, retain_acc_r: float, test_acc_u: float,
                test_acc_r: float) -> float:
    """The challenge's ranking score: F x RA_U/RA_R x TA_U/TA_R."""
    return quality * (retain_acc_u / retain_acc_r) * (test_acc_u / test_acc_r)
