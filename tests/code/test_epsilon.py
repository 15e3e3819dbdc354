"""The challenge's forgetting quality F on constructed distributions, where the answer is
known: identical unlearned/retrained outputs score near 1, separable ones score 0."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from forgetflow.core.epsilon import (
    epsilon_from_rates,
    example_score,
    final_score,
    forgetting_quality,
    logit_confidence,
)


def test_identical_distributions_score_near_one() -> None:
    rng = np.random.default_rng(0)
    u, r = rng.normal(size=(400, 60)), rng.normal(size=(400, 60))
    quality, eps = forgetting_quality(u, r, seed=1)
    assert quality >= 0.85
    assert np.median(eps) < 0.5


def test_separable_distributions_score_zero() -> None:
    rng = np.random.default_rng(0)
    u, r = rng.normal(size=(16, 40)) + 20.0, rng.normal(size=(16, 40))
    quality, eps = forgetting_quality(u, r)
    assert quality == 0.0
    assert np.isinf(eps).all()


def test_quality_falls_as_the_distributions_move_apart() -> None:
    rng = np.random.default_rng(3)
    r = rng.normal(size=(200, 40))
    scores = [forgetting_quality(rng.normal(size=(200, 40)) + shift, r)[0]
              for shift in (0.0, 0.5, 1.5)]
    assert scores[0] > scores[1] > scores[2]


@pytest.mark.parametrize("fpr, fnr, expected", [
    (0.0, 0.0, math.inf),          # a perfect attack
    (0.0, 0.3, None),              # exactly one zero rate: discarded
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


def test_too_few_models_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        forgetting_quality(np.zeros((1, 3)), np.zeros((1, 3)))
