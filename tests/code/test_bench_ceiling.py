"""The epsilon-ceiling analysis (forgetflow.bench.ceiling) scores what it claims to: a centre
equal to the Retrains' own per-row means with Retrain-like noise scores like a second Retrain
set, a centre shifted by several spreads scores near 0, and no noise at all scores 0."""

from __future__ import annotations

import numpy as np

from forgetflow.bench.ceiling import ceiling_scores


def test_ceiling_scores_rank_centres_by_how_close_they_are_to_retrain() -> None:
    rng = np.random.default_rng(7)
    rows, n = 300, 8
    truth = rng.normal(4.0, 3.0, rows)  # each row's confidence under a Retrain, on average
    a = truth + rng.normal(0, 1.0, (n, rows))
    b = truth + rng.normal(0, 1.0, (n, rows))
    phi0 = truth + 1.0  # the original: more confident, same order
    far = truth + 5.0
    out = ceiling_scores(a, b, dm=far + rng.normal(0, 1.0, (n, rows)), phi0=phi0,
                         targets=far, seed=0)
    assert 0.9 < out["retrain_spread"] < 1.1
    assert out["retrain_b"] > 0.05
    assert out["dm"] < 0.25 * out["retrain_b"] and out["targets+1sd"] < 0.25 * out["retrain_b"]
    assert out["retrain_b_mean+0sd"] == 0.0 and out["targets+0sd"] == 0.0
    # b's per-row means are noisy estimates of the truth: close to a second Retrain set
    assert out["retrain_b_mean+1sd"] > 0.6 * out["retrain_b"]
    # the oracle map of phi0 recovers the truth's order and level here
    assert out["oracle_monotone+1sd"] > 0.6 * out["retrain_b"]
