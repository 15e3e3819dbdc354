"""The challenge's forgetting quality F on constructed distributions with known answers: point
masses and separable sides score 0, an interval attack catches what no single threshold can,
the vectorised attack scan matches an explicit one, and bad input is refused."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from forgetflow.core import epsilon as E
from forgetflow.core.epsilon import (
    bootstrap_interval,
    epsilon_from_rates,
    example_epsilons,
    example_score,
    final_score,
    forgetting_quality,
    forgetting_quality_split,
    logit_confidence,
    peaky,
)


def _brute_epsilon(u: np.ndarray, r: np.ndarray, two_threshold: bool) -> float:
    """Explicit scan: thresholds at midpoints of distinct pooled values and outside both ends,
    every rule 'unlearned iff t_a < phi <= t_b' and its complement."""
    v = np.unique(np.concatenate([u, r]))
    t = np.concatenate([[v[0] - 1], (v[1:] + v[:-1]) / 2, [v[-1] + 1]])
    best = 0.0
    for a, b in itertools.combinations(range(len(t)), 2):
        if not two_threshold and a != 0 and b != len(t) - 1:
            continue
        in_u = np.mean((u > t[a]) & (u <= t[b]))
        in_r = np.mean((r > t[a]) & (r <= t[b]))
        for fpr, fnr in ((in_r, 1 - in_u), (1 - in_r, in_u)):
            eps = epsilon_from_rates(fpr, fnr)
            best = best if eps is None else max(best, eps)
    return best


@pytest.mark.parametrize("two_threshold", [True, False])
def test_vectorised_attack_scan_matches_an_explicit_one(two_threshold: bool) -> None:
    rng = np.random.default_rng(7)
    for _ in range(60):
        nu, nr = rng.integers(2, 8, 2)
        digits = int(rng.choice([0, 1, 3]))  # 0 digits: many ties
        u = np.round(rng.normal(size=(nu, 1)) * rng.choice([1.0, 3.0]), digits)
        r = np.round(rng.normal(size=(nr, 1)) + rng.choice([0.0, 1.0, 6.0]), digits)
        if peaky(u, r)[0]:
            continue
        got = example_epsilons(u, r, two_threshold=two_threshold)[0]
        assert got == pytest.approx(_brute_epsilon(u[:, 0], r[:, 0], two_threshold))


@pytest.mark.parametrize("n", [4, 8, 16])
@pytest.mark.parametrize("at_mean", [True, False])
def test_identical_unlearned_models_score_zero(n: int, at_mean: bool) -> None:
    rng = np.random.default_rng(n)
    r = rng.normal(size=(n, 200))
    point = r.mean(axis=0) if at_mean else rng.normal(size=200)
    u = np.tile(point, (n, 1))
    q = forgetting_quality(u, r)
    assert q.score == 0.0 and np.isinf(q.eps).all()
    # an interval around the point also separates it; with single thresholds alone only the
    # peaky rule does
    assert forgetting_quality(u, r, two_threshold=False).score == 0.0
    # the older split estimator rewarded the point mass: why it is no longer the headline
    assert forgetting_quality_split(u, r)[0] > 0.3


def test_peaky_rule_is_a_one_percent_std_ratio_either_way() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(size=(16, 3))
    base = rng.normal(size=(16, 3))
    narrow = base / base.std(axis=0) * r.std(axis=0)  # unit ratio, then scaled per column
    assert peaky(narrow * 0.005, r).all() and peaky(r, narrow * 0.005).all()
    assert not peaky(narrow * 0.05, r).any()
    assert peaky(np.ones((4, 3)), np.ones((4, 3))).all()  # both constant


@pytest.mark.parametrize("n", [16, 32])
def test_two_samples_of_one_distribution_score_like_retrain_vs_retrain(n: int) -> None:
    rng = np.random.default_rng(n)
    u, r, r2 = (rng.normal(size=(n, 600)) for _ in range(3))
    same, floor = forgetting_quality(u, r).score, forgetting_quality(r2, r).score
    assert same > 0.05  # clearly above the point mass's 0
    assert abs(same - floor) < 0.03


def test_the_floor_falls_with_n_because_the_maximum_finds_noise() -> None:
    """All attacks fitted and scored on the same models: more models, more attacks, a larger
    maximum. Identical distributions score lower at larger N, so F compares rows at one N."""
    rng = np.random.default_rng(1)
    scores = [forgetting_quality(*(rng.normal(size=(n, 500)) for _ in range(2))).score
              for n in (8, 16, 32)]
    assert scores[0] > scores[1] > scores[2] > 0.05


def test_separable_distributions_score_zero() -> None:
    rng = np.random.default_rng(0)
    u, r = rng.normal(size=(16, 40)) + 20.0, rng.normal(size=(16, 40))
    q = forgetting_quality(u, r)
    assert q.score == 0.0 and np.isinf(q.eps).all()


def test_quality_falls_as_the_distributions_move_apart() -> None:
    rng = np.random.default_rng(3)
    r = rng.normal(size=(16, 300))
    scores = [forgetting_quality(rng.normal(size=(16, 300)) + shift, r).score
              for shift in (0.0, 1.0, 3.0)]
    assert scores[0] > scores[1] > scores[2]


def test_interval_attack_separates_what_no_single_threshold_can() -> None:
    """Unlearned on both sides of a Retrain band: the complement of the band separates them
    (eps = inf); the best single threshold errs on half the unlearned models and on one
    retrained model: eps = log((1 - delta - 1/2) / (1/16)), bin 4, score 1/16."""
    rng = np.random.default_rng(0)
    n = 16
    r = rng.uniform(-1, 1, size=(n, 50))
    side = np.where(np.arange(n)[:, None] < n // 2, -1.0, 1.0)
    u = side * rng.uniform(5, 6, size=(n, 50))
    assert forgetting_quality(u, r).score == 0.0
    single = forgetting_quality(u, r, two_threshold=False)
    assert single.score == 2.0 ** -4
    np.testing.assert_allclose(single.eps, math.log((0.5 - E.DELTA) * n))


def test_interval_attack_lowers_f_for_a_wider_spread_at_the_same_mean() -> None:
    rng = np.random.default_rng(2)
    r, wide = rng.normal(size=(32, 300)), 10 * rng.normal(size=(32, 300))
    both = forgetting_quality(wide, r).score
    single = forgetting_quality(wide, r, two_threshold=False).score
    assert both < 0.6 * single


def test_bootstrap_interval_contains_f_and_narrows_with_more_examples() -> None:
    rng = np.random.default_rng(4)
    widths = []
    for count in (100, 1600):
        q = forgetting_quality(*(rng.normal(size=(8, count)) for _ in range(2)), seed=3)
        assert q.ci_low <= q.score <= q.ci_high and q.ci_low < q.ci_high
        widths.append(q.ci_high - q.ci_low)
    assert widths[1] < 0.5 * widths[0]
    scores = rng.random(50)
    assert bootstrap_interval(scores, seed=5) == bootstrap_interval(scores, seed=5)


def test_examples_beyond_the_cap_are_sampled() -> None:
    rng = np.random.default_rng(0)
    u, r = rng.normal(size=(2, E.MAX_EXAMPLES + 10)), rng.normal(size=(2, E.MAX_EXAMPLES + 10))
    assert len(forgetting_quality(u, r).eps) == E.MAX_EXAMPLES


@pytest.mark.parametrize("fpr, fnr, expected", [
    (0.0, 0.0, math.inf),          # a perfect attack
    (0.0, 0.3, None),              # exactly one zero rate: discarded (too few samples)
    (0.3, 0.0, None),
    (0.5, 0.5, 0.0),               # a coin flip: log(0.5 / 0.5)
    (0.1, 0.2, math.log(0.8 / 0.1)),
])
def test_epsilon_from_rates(fpr: float, fnr: float, expected: float | None) -> None:
    got = epsilon_from_rates(fpr, fnr, delta=0.0)
    if expected is None or math.isinf(expected):
        assert got == expected
    else:
        assert got == pytest.approx(expected)


@pytest.mark.parametrize("eps, score", [(0.0, 1.0), (0.49, 1.0), (0.5, 0.5), (1.2, 0.25),
                                        (math.inf, 0.0)])
def test_bins_are_half_wide_and_score_two_to_the_minus_bin(eps: float, score: float) -> None:
    assert example_score(eps) == score


def test_final_score_scales_by_utility_ratios() -> None:
    assert final_score(0.8, 0.9, 0.95, 0.85, 0.9) == pytest.approx(0.8 * 0.9 / 0.95 * 0.85 / 0.9)


def test_logit_confidence_is_the_logit_of_the_true_class_probability() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 1.0]])
    labels = torch.tensor([0, 2])
    p = torch.softmax(logits, 1).gather(1, labels[:, None]).squeeze(1)
    np.testing.assert_allclose(logit_confidence(logits, labels), torch.log(p / (1 - p)).numpy(),
                               rtol=1e-5)


@pytest.mark.parametrize("u_shape, r_shape, match", [
    ((1, 3), (4, 3), "at least 2"),
    ((4, 3), (1, 3), "at least 2"),
    ((4, 3), (4, 5), "same examples"),
    ((4,), (4,), "same examples"),
])
def test_bad_input_is_an_error(u_shape: tuple, r_shape: tuple, match: str) -> None:
    u, r = np.zeros(u_shape), np.ones(r_shape)
    for fn in (forgetting_quality, forgetting_quality_split):
        with pytest.raises(ValueError, match=match):
            fn(u, r)
