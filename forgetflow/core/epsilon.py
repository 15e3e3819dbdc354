"""The forgetting quality F of the 2023 NeurIPS machine-unlearning challenge.

Protocol (Triantafillou et al., "Are we making progress in unlearning? Findings from the first
NeurIPS unlearning competition", 2024, and the challenge's released evaluation code), in our
words and implemented from that description:

1. From one original model, N unlearned models (unlearning seeds differ) and N retrained
   models (training seeds differ) are produced.
2. Per forget example, each model gives one number, the logit-scaled confidence of the true
   label phi = log p_y - log(1 - p_y), computed stably as z_y - logsumexp_{k != y} z_k.
3. Attacks. Sort the 2N pooled values of one example; the cuts between distinct neighbours,
   plus one below and one above all values, give thresholds t_0 < ... < t_T. The family is
   every interval rule "unlearned iff t_i < phi <= t_j" (i < j) and its complement. With
   t_i = t_0 or t_j = t_T these are the single-threshold rules "phi > t" and "phi < t"; the
   rest are the two-threshold rules that catch a distribution narrower or wider than the
   other with the same centre. Each attack has FPR (retrained called unlearned) and FNR, all
   fitted and measured on the same N + N models: no half split.
4. eps of an attack at delta = 1e-5:
       eps = max(log(1 - delta - FPR) - log FNR,  log(1 - delta - FNR) - log FPR),
   a term whose first log has a non-positive argument dropped. FPR = FNR = 0 (perfect
   separation) gives eps = inf. An attack with exactly one zero rate is discarded: the
   released evaluator drops those thresholds, reading them as too few samples, not as proof
   of separation. The example's eps is the maximum over attacks, floored at 0.
5. Degenerate ("peaky") examples: with s_U, s_R the standard deviations of the two sides,
   the example scores eps = inf when min(s_U, s_R) <= 0.01 * max(s_U, s_R) (both constant
   included). The released evaluator uses the same 1% ratio on the two ranges and gives such
   examples its epsilon cap, which no bin scores; we use std (one outlying model cannot hide a
   point mass) and inf. So N identical unlearned models score F = 0 against varied retrains.
6. eps falls in 0.5-wide bins; bin b (eps in [0.5 b, 0.5 (b + 1))) scores 2^-b and eps = inf
   scores 0; F is the mean over forget examples (at most MAX_EXAMPLES, a seeded sample). The
   evaluator scores only bins below ceil(log(N - 1)), but no finite eps from N models per side
   reaches log(N - 1), so the two agree. A 95% percentile bootstrap over the per-example scores
   (RESAMPLES resamples, seeded) gives the interval the benchmark reports beside F.
7. The final score is F x RA_U/RA_R x TA_U/TA_R (retain and test accuracy of the unlearned
   vs the retrained models, each averaged over the N models).

Differences from the released code, all towards a stronger attacker: it scans a fixed grid of
thresholds (100 per unit of phi), one direction for single thresholds and one orientation for
intervals; we take every cut between observed values, both directions and complements.

Why the older half-split estimator (`forgetting_quality_split`: thresholds fitted on half of
each side's models, rates measured on the other half) is no longer the headline: it rewards
low variance. A point mass at Retrain's centre defeats a threshold fitted on four models, so N
copies of the untouched original scored F ~ 0.5, above real unlearning, where the challenge
gives them 0. It stays as a secondary column; with all attacks fitted on all models, two
samples of one distribution score below 1 (the maximum finds noise), which is why the benchmark
reports Retrain's own F (a second set of retrains) as the floor at the same N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from forgetflow.core.matching import confidence_logit

DELTA = 1e-5
BIN_WIDTH = 0.5
MAX_EXAMPLES = 2000  # forget examples scored per run (seeded sample): the cost is per example
PEAKY_RATIO = 0.01  # min(s_U, s_R) <= PEAKY_RATIO * max(s_U, s_R): a point mass, eps = inf
RESAMPLES = 1000  # bootstrap resamples over forget examples
_CHUNK_CELLS = 2_000_000  # examples x attacks evaluated at once (memory bound)


@dataclass(frozen=True)
class Quality:
    """F with its 95% bootstrap interval, the per-example eps and scores (sampled examples)."""

    score: float
    ci_low: float
    ci_high: float
    eps: np.ndarray
    scores: np.ndarray


def logit_confidence(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """phi = z_y - logsumexp_{k != y} z_k, i.e. log(p_y / (1 - p_y)) without saturation (the
    same quantity dm matches for sample requests)."""
    return confidence_logit(logits, labels).numpy()


def _eps_of_rates(fpr: np.ndarray, fnr: np.ndarray, delta: float) -> np.ndarray:
    """Elementwise eps of attacks; nan marks a discarded attack (exactly one zero rate)."""
    fpr, fnr = np.broadcast_arrays(np.asarray(fpr, float), np.asarray(fnr, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(1 - delta - fpr > 0, np.log(1 - delta - fpr) - np.log(fnr), np.nan)
        b = np.where(1 - delta - fnr > 0, np.log(1 - delta - fnr) - np.log(fpr), np.nan)
    eps = np.fmax(a, b)
    eps = np.where(np.isnan(a) & np.isnan(b), np.inf, eps)  # both rates ~1: complement perfect
    eps = np.where((fpr == 0) != (fnr == 0), np.nan, eps)
    return np.where((fpr == 0) & (fnr == 0), np.inf, eps)


def epsilon_from_rates(fpr: float, fnr: float, delta: float = DELTA) -> float | None:
    """eps of one attack; None when the attack is discarded (exactly one rate is zero)."""
    eps = float(_eps_of_rates(fpr, fnr, delta))
    return None if math.isnan(eps) else eps


def _check(unlearned: np.ndarray, retrained: np.ndarray) -> None:
    if unlearned.ndim != 2 or retrained.ndim != 2 or unlearned.shape[1] != retrained.shape[1]:
        raise ValueError("phi matrices must be [models, examples] over the same examples")
    if len(unlearned) < 2 or len(retrained) < 2:
        raise ValueError("the epsilon score needs at least 2 models on each side")


def _cut_pairs(m: int, two_threshold: bool) -> tuple[np.ndarray, np.ndarray]:
    """Cut indices (i < j) of the interval rules over m pooled values; cut k leaves the k
    smallest values at or below the threshold."""
    i, j = np.triu_indices(m + 1, k=1)
    if not two_threshold:
        keep = (i == 0) | (j == m)
        i, j = i[keep], j[keep]
    return i, j


def _attack_epsilons(unlearned: np.ndarray, retrained: np.ndarray, delta: float,
                     two_threshold: bool) -> np.ndarray:
    """Max eps over the attack family per example (no degenerate rule); inputs [models, E]."""
    nu, nr = len(unlearned), len(retrained)
    m = nu + nr
    pooled = np.concatenate([unlearned, retrained]).T.astype(float)  # [E, m]
    order = np.argsort(pooled, axis=1, kind="stable")
    values = np.take_along_axis(pooled, order, 1)
    below_u = np.zeros((len(pooled), m + 1))
    below_u[:, 1:] = np.cumsum(order < nu, axis=1)  # unlearned among the k smallest
    # a cut inside a run of equal values is no threshold: use the run's start instead
    valid = np.ones((len(pooled), m + 1), bool)
    valid[:, 1:m] = values[:, 1:] > values[:, :-1]
    cut = np.maximum.accumulate(np.where(valid, np.arange(m + 1), 0), axis=1)
    below_u = np.take_along_axis(below_u, cut, 1)
    below_r = cut - below_u
    i, j = _cut_pairs(m, two_threshold)
    best = np.zeros(len(pooled))
    step = max(1, _CHUNK_CELLS // len(i))
    for s in range(0, len(pooled), step):
        in_u = below_u[s:s + step, j] - below_u[s:s + step, i]  # unlearned inside (t_i, t_j]
        in_r = below_r[s:s + step, j] - below_r[s:s + step, i]
        eps = np.fmax(_eps_of_rates(in_r / nr, (nu - in_u) / nu, delta),   # inside: unlearned
                      _eps_of_rates((nr - in_r) / nr, in_u / nu, delta))   # complement
        best[s:s + step] = np.maximum(np.nanmax(np.where(np.isnan(eps), 0.0, eps), 1), 0.0)
    return best


def peaky(unlearned: np.ndarray, retrained: np.ndarray) -> np.ndarray:
    """Per example: is either side (near-)constant relative to the other (rule 5)?"""
    su, sr = unlearned.std(axis=0), retrained.std(axis=0)
    return np.minimum(su, sr) <= PEAKY_RATIO * np.maximum(su, sr)


def example_epsilons(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA,
                     two_threshold: bool = True) -> np.ndarray:
    """eps per example from phi matrices [models, examples]; two_threshold=False keeps only
    the single-threshold rules (for comparison)."""
    unlearned, retrained = np.asarray(unlearned, float), np.asarray(retrained, float)
    _check(unlearned, retrained)
    eps = _attack_epsilons(unlearned, retrained, delta, two_threshold)
    return np.where(peaky(unlearned, retrained), np.inf, eps)


def example_score(eps: float) -> float:
    """2^-bin with 0.5-wide bins; eps = inf scores 0."""
    return 0.0 if not math.isfinite(eps) else 2.0 ** -math.floor(max(eps, 0.0) / BIN_WIDTH)


def bootstrap_interval(scores: np.ndarray, seed: int = 0, resamples: int = RESAMPLES,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `scores` (resampling examples)."""
    scores = np.asarray(scores, float)
    if scores.size == 0:
        raise ValueError("no scores to resample")
    idx = np.random.default_rng(seed).integers(0, scores.size, (resamples, scores.size))
    tail = 50 * (1 - level)
    low, high = np.percentile(scores[idx].mean(axis=1), [tail, 100 - tail])
    return float(low), float(high)


def _columns(n: int, seed: int) -> np.ndarray:
    cols = np.arange(n)
    if n > MAX_EXAMPLES:
        cols = np.sort(np.random.default_rng(seed).choice(cols, MAX_EXAMPLES, replace=False))
    return cols


def forgetting_quality(unlearned: np.ndarray, retrained: np.ndarray, seed: int = 0,
                       delta: float = DELTA, two_threshold: bool = True,
                       resamples: int = RESAMPLES) -> Quality:
    """F (challenge semantics) with its bootstrap interval, from phi matrices shaped
    [models, forget examples]."""
    unlearned, retrained = np.asarray(unlearned, float), np.asarray(retrained, float)
    _check(unlearned, retrained)
    cols = _columns(unlearned.shape[1], seed)
    eps = example_epsilons(unlearned[:, cols], retrained[:, cols], delta, two_threshold)
    scores = np.asarray([example_score(e) for e in eps])
    low, high = bootstrap_interval(scores, seed, resamples)
    return Quality(float(scores.mean()), low, high, eps, scores)


def _split_rates(u: np.ndarray, r: np.ndarray, t: np.ndarray, sign: int):
    fpr = np.mean(sign * (r[None, :] - t[:, None]) > 0, axis=1)
    fnr = np.mean(sign * (u[None, :] - t[:, None]) <= 0, axis=1)
    return fpr, fnr


def example_epsilon_split(unlearned: np.ndarray, retrained: np.ndarray, seed: int = 0,
                          delta: float = DELTA) -> float:
    """The older estimator's eps of one example: per direction, the threshold maximising
    1 - FPR - FNR on one half of each side's models, its rates on the other half, both ways."""
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
            fpr, fnr = _split_rates(fit_u, fit_r, thresholds, sign)
            t = thresholds[int(np.argmax(1 - (fpr + fnr)))]
            ev_fpr, ev_fnr = _split_rates(ev_u, ev_r, np.asarray([t]), sign)
            eps = epsilon_from_rates(float(ev_fpr[0]), float(ev_fnr[0]), delta)
            if eps is not None:
                best = max(best, eps)
    return best


def forgetting_quality_split(unlearned: np.ndarray, retrained: np.ndarray, seed: int = 0,
                             delta: float = DELTA) -> tuple[float, np.ndarray]:
    """The older half-split F (secondary column); returns (F, per-example eps)."""
    unlearned, retrained = np.asarray(unlearned, float), np.asarray(retrained, float)
    _check(unlearned, retrained)
    cols = _columns(unlearned.shape[1], seed)
    eps = np.asarray([example_epsilon_split(unlearned[:, j], retrained[:, j], seed + int(j),
                                            delta) for j in cols])
    return float(np.mean([example_score(e) for e in eps])), eps


def final_score(quality: float, retain_acc_u: float, retain_acc_r: float, test_acc_u: float,
                test_acc_r: float) -> float:
    """The challenge's ranking score: F x RA_U/RA_R x TA_U/TA_R."""
    return quality * (retain_acc_u / retain_acc_r) * (test_acc_u / test_acc_r)
