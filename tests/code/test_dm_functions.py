"""The math dm is made of (docs/method.md §2-§5), on small constructed inputs with known
answers: the two-proportion z statistic of the stopping test, the per-class quantile
(1-D optimal-transport) targets of sample requests, the temperature fitted for class and
backdoor targets, and the stopping test that composes them on a model's predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import chi2_contingency

from forgetflow.core.data.tensors import ImageSet
from forgetflow.core.matching import calibrate_temperature, excess_z, quantile_targets
from forgetflow.core.scenarios import scenario_named
from forgetflow.core.training import TrainConfig
from forgetflow.core.triggers import TriggerSpec
from forgetflow.core.unlearn.base import UnlearnTask
from forgetflow.core.unlearn.dm import DMConfig
from forgetflow.core.unlearn.dm_reference import stop_statistic
from forgetflow.core.unlearn.dm_streams import Pool, Streams

# -- excess_z: z = (p_a - p_b) / sqrt(p(1-p)(1/n_a + 1/n_b)), p pooled (§5) -------------------


def test_excess_z_is_the_pooled_two_proportion_statistic() -> None:
    # 30/100 vs 20/100: pooled 0.25, se = sqrt(0.25 * 0.75 * 0.02), z^2 = 0.01 / 0.00375
    assert excess_z(30, 100, 20, 100) == pytest.approx(math.sqrt(8 / 3), rel=1e-12)
    # 9/10 vs 45/90: pooled 0.54, se^2 = 0.54 * 0.46 * (1/10 + 1/90) = 0.0276
    assert excess_z(9, 10, 45, 90) == pytest.approx(0.4 / math.sqrt(0.0276), rel=1e-12)


@pytest.mark.parametrize(("a", "n_a", "b", "n_b"),
                         [(30, 100, 20, 100), (9, 10, 45, 90), (3, 250, 17, 60), (1, 7, 0, 5)])
def test_excess_z_squared_is_pearsons_chi_square_with_the_sign_of_the_gap(a, n_a, b, n_b):
    """Pooled two-proportion z and Pearson's chi-square (no continuity correction) on the
    2x2 table are the same test: an independent implementation to compare with."""
    chi2 = chi2_contingency([[a, n_a - a], [b, n_b - b]], correction=False).statistic
    z = excess_z(a, n_a, b, n_b)
    assert z ** 2 == pytest.approx(chi2, rel=1e-9)
    assert np.sign(z) == np.sign(a / n_a - b / n_b)


def test_excess_z_flips_sign_when_the_rates_swap_and_is_zero_when_they_are_equal() -> None:
    for a, n_a, b, n_b in [(30, 100, 20, 100), (9, 10, 45, 90), (3, 250, 17, 60)]:
        assert excess_z(b, n_b, a, n_a) == pytest.approx(-excess_z(a, n_a, b, n_b), rel=1e-12)
    assert excess_z(10, 50, 40, 200) == 0.0
    assert excess_z(7, 7, 3, 3) == 0.0 and excess_z(0, 7, 0, 3) == 0.0  # no variance: 0
    assert excess_z(0, 0, 3, 10) == 0.0 and excess_z(3, 10, 0, 0) == 0.0  # nothing counted


def test_excess_z_counts_standard_errors() -> None:
    """Same rates on four times the rows: twice the standard errors. More hits on the forget
    side: a larger statistic."""
    assert excess_z(120, 400, 80, 400) == pytest.approx(2 * excess_z(30, 100, 20, 100))
    zs = [excess_z(h, 100, 20, 100) for h in range(0, 101, 5)]
    assert all(lo < hi for lo, hi in zip(zs[:-1], zs[1:], strict=True))


def test_excess_z_is_standard_normal_when_both_sides_share_one_rate() -> None:
    """Under the null the statistic is ~N(0, 1): about 5% of draws exceed 1.645 (measured
    4.8-5.6% over rng seeds 0-9, mean within 0.04 of 0, std 0.99-1.02; 2000 draws give the
    rate a standard error of 0.5 pt)."""
    rng = np.random.default_rng(0)
    n_a, n_b = 300, 500
    hits = zip(rng.binomial(n_a, 0.3, 2000), rng.binomial(n_b, 0.3, 2000), strict=True)
    zs = np.array([excess_z(int(a), n_a, int(b), n_b) for a, b in hits])
    assert 0.03 <= float(np.mean(zs > 1.645)) <= 0.075
    assert abs(float(zs.mean())) < 0.1 and 0.9 < float(zs.std()) < 1.1


# -- quantile_targets: t_i = Q_{U_c}((rank_i + 0.5) / n_c) (§2) ---------------------------------


def test_quantile_targets_send_each_rank_to_the_reference_quantile() -> None:
    """Reference 0..100: its quantile at level q is 100q, so four forget rows (ranked 2, 0,
    3, 1) get 62.5, 12.5, 87.5 and 37.5, whatever their own values."""
    ref = np.arange(101.0)
    forget = np.array([0.3, -5.0, 9.0, 0.1])
    targets = quantile_targets(forget, np.zeros(4, int), ref, np.zeros(101, int))
    assert targets == pytest.approx([62.5, 12.5, 87.5, 37.5])


def test_quantile_targets_are_numpys_quantiles_per_class_in_rank_order() -> None:
    rng = np.random.default_rng(1)
    ref_y = np.repeat([0, 1], [400, 300])
    ref = np.where(ref_y == 0, rng.normal(0, 1, 700), rng.normal(50, 5, 700))
    forget_y = rng.permutation(np.repeat([0, 1], [37, 23]))  # classes interleaved
    forget = rng.normal(3, 2, 60)
    targets = quantile_targets(forget, forget_y, ref, ref_y)
    for c in (0, 1):
        rows = np.flatnonzero(forget_y == c)
        order = rows[np.argsort(forget[rows])]  # forget rows of c, least confident first
        levels = (np.arange(len(rows)) + 0.5) / len(rows)
        assert targets[order] == pytest.approx(np.quantile(ref[ref_y == c], levels))
        assert np.all(np.diff(targets[order]) > 0)  # monotone: the ranking is kept
        pool = ref[ref_y == c]
        assert pool.min() <= targets[rows].min() and targets[rows].max() <= pool.max()


def test_quantile_targets_depend_only_on_ranks() -> None:
    """The map is monotone in the forget statistic: any increasing transform of it (here
    exp, and an affine one) leaves the targets as they were."""
    rng = np.random.default_rng(2)
    forget, forget_y = rng.normal(0, 3, 50), rng.integers(0, 3, 50)
    ref, ref_y = rng.normal(1, 1, 300), rng.integers(0, 3, 300)
    targets = quantile_targets(forget, forget_y, ref, ref_y)
    for moved in (np.exp(forget), 7 + 0.5 * forget):
        assert quantile_targets(moved, forget_y, ref, ref_y) == pytest.approx(targets)


def test_coupling_noise_keeps_the_reference_distribution_and_varies_who_gets_what() -> None:
    """Blurred coupling (§12): per class the multiset of targets is exactly the monotone
    map's (same reference quantiles), only the assignment moves, and only among rows sent to
    a correct prediction (phi > 0): the rows the exact map misclassifies keep their targets.
    The same seed gives the same targets, another seed others; small noise keeps the ranking
    mostly, large noise barely."""
    rng = np.random.default_rng(3)
    forget, forget_y = rng.normal(0, 1, 400), rng.integers(0, 2, 400)
    ref, ref_y = rng.normal(1, 1, 1000), rng.integers(0, 2, 1000)
    exact = quantile_targets(forget, forget_y, ref, ref_y)
    blurred = quantile_targets(forget, forget_y, ref, ref_y, noise=0.35, seed=1)
    for c in (0, 1):
        rows = forget_y == c
        assert np.sort(blurred[rows]) == pytest.approx(np.sort(exact[rows]))
    assert not np.allclose(blurred, exact)
    wrong = exact <= 0
    assert 10 < wrong.sum() < 200 and np.array_equal(blurred[wrong], exact[wrong])
    assert quantile_targets(forget, forget_y, ref, ref_y, 0.35, 1) == pytest.approx(blurred)
    assert not np.allclose(quantile_targets(forget, forget_y, ref, ref_y, 0.35, 2), blurred)
    assert quantile_targets(forget, forget_y, ref, ref_y, 0.0, 5) == pytest.approx(exact)

    def rank_corr(a: np.ndarray) -> float:
        return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(exact)))[0, 1])

    mild = rank_corr(blurred)
    wild = rank_corr(quantile_targets(forget, forget_y, ref, ref_y, 10.0, 1))
    assert 0.8 < mild < 0.99 and wild < 0.6  # the misclassified ~16% keep their ranks


def test_a_class_with_few_reference_rows_borrows_the_whole_reference() -> None:
    """Fewer than 20 reference rows of a class: its targets come from every reference row."""
    ref_y = np.repeat([0, 1], [100, 5])
    ref = np.where(ref_y == 0, np.linspace(0, 1, 105), 1000.0)
    forget, forget_y = np.array([2.0, 1.0, 3.0]), np.ones(3, int)
    targets = quantile_targets(forget, forget_y, ref, ref_y)
    assert targets == pytest.approx(np.quantile(ref, [0.5, 1 / 6, 5 / 6]))


# -- calibrate_temperature: mean top-1 of softmax(z / T), class k masked, equals the target (§2) -


def _masked_confidence(logits: torch.Tensor, k: int, temperature: float) -> float:
    z = logits.clone()
    z[:, k] = -math.inf
    return float(F.softmax(z / temperature, 1).max(1).values.mean())


@pytest.fixture
def logits() -> torch.Tensor:
    return torch.randn(200, 10, generator=torch.Generator().manual_seed(3)) * 4


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0, 2.5, 20.0])
def test_calibration_recovers_the_temperature_that_made_the_confidence(logits, temperature):
    target = _masked_confidence(logits, 3, temperature)
    found = calibrate_temperature(logits, 3, target)
    assert found == pytest.approx(temperature, rel=1e-4)
    assert _masked_confidence(logits, 3, found) == pytest.approx(target, abs=1e-5)


def test_calibration_ignores_the_masked_class_and_scales_with_the_logits(logits) -> None:
    target = _masked_confidence(logits, 3, 1.7)
    found = calibrate_temperature(logits, 3, target)
    wild = logits.clone()
    wild[:, 3] = torch.linspace(-100, 100, len(wild))  # the masked class's logit says nothing
    assert calibrate_temperature(wild, 3, target) == pytest.approx(found, rel=1e-6)
    assert calibrate_temperature(logits * 2, 3, target) == pytest.approx(2 * found, rel=1e-4)


def test_a_higher_target_confidence_needs_a_lower_temperature(logits) -> None:
    top = _masked_confidence(logits, 0, math.exp(-3))  # the most the search range reaches
    floor = _masked_confidence(logits, 0, math.exp(4))
    targets = np.linspace(floor, top, 9)[1:-1]
    temps = [calibrate_temperature(logits, 0, float(t)) for t in targets]
    assert all(hi > lo for hi, lo in zip(temps[:-1], temps[1:], strict=True))
    # an unreachable target ends at the edge of the search range, never beyond it
    assert calibrate_temperature(logits, 0, 1.0) == pytest.approx(math.exp(-3), rel=1e-6)
    assert calibrate_temperature(logits, 0, 0.0) == pytest.approx(math.exp(4), rel=1e-6)


# -- stop_statistic: the stopping test on a model's predictions (§5) ----------------------------

K = 3
NUM_CLASSES = 10


def _one_hot_logits(pred: np.ndarray) -> torch.Tensor:
    """Logits whose argmax is `pred`: an identity "model" on them predicts exactly `pred`."""
    return F.one_hot(torch.as_tensor(pred), NUM_CLASSES).float() * 5


def _pool(pred: np.ndarray, labels: np.ndarray) -> Pool:
    return Pool(_one_hot_logits(pred), torch.as_tensor(labels), encoded=True)


def _task(scenario: str, n_forget: int, **kw) -> UnlearnTask:
    rows = ImageSet(torch.zeros(n_forget, 1, 2, 2, dtype=torch.uint8),
                    torch.zeros(n_forget, dtype=torch.long), np.arange(n_forget).astype(str))
    target = scenario_named(scenario).target(rows, rows, **kw)
    return UnlearnTask(torch.nn.Identity(), None, TrainConfig(), target, rows)  # type: ignore


def _stop(scenario: str, forget: tuple[np.ndarray, np.ndarray],
          anchor: tuple[np.ndarray, np.ndarray], original_pred: np.ndarray,
          probe: torch.Tensor | None = None, stamped_pred: np.ndarray | None = None,
          cfg: DMConfig | None = None, **kw) -> tuple[float, float, bool]:
    """stop_statistic of an identity network on pools whose rows are the logits it predicts
    from: (predictions, labels) of the forget and anchor rows, the original's predictions on
    the anchor rows."""
    streams = Streams(
        forget=_pool(*forget), replay=_pool(*anchor), anchor=_pool(*anchor),
        anchor_ref=F.softmax(_one_hot_logits(original_pred), 1),
        anchor_stamped=None if stamped_pred is None else _pool(stamped_pred, anchor[1]))
    probe = torch.arange(len(forget[0])) if probe is None else probe
    return stop_statistic(torch.nn.Identity(), _task(scenario, len(forget[0]), **kw), streams,
                          probe, cfg or DMConfig(), torch.device("cpu"))


def _labels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, NUM_CLASSES, n)


def _wrong(labels: np.ndarray, avoid: int | None = None) -> np.ndarray:
    """A prediction other than each label (and other than `avoid`)."""
    out = (labels + 1) % NUM_CLASSES
    return np.where(out == avoid, (labels + 2) % NUM_CLASSES, out)


def _set(pred: np.ndarray, rows: np.ndarray, value: int | np.ndarray) -> np.ndarray:
    out = pred.copy()
    out[rows] = value
    return out


def test_class_stop_compares_how_often_k_is_predicted_on_forget_and_other_class_rows() -> None:
    """Forget rows predicted k 30 times in 100, anchor rows of other classes 10 times: z is
    the excess of 30/100 over 10/n_other (anchor rows of class k do not count), and agreement
    with the original leaves out the rows the original put in k."""
    y_u = _labels(400, 0)
    other = np.flatnonzero(y_u != K)
    pred_u = _set(_set(y_u, other[:10], K), np.flatnonzero(y_u == K), 0)  # k rows: never k
    forget_y = np.full(100, K)
    cfg = DMConfig(min_agreement=0.95)
    z, agreement, done = _stop("class", (_set(np.zeros(100, int), np.arange(30), K), forget_y),
                               (pred_u, y_u), y_u, forget_class=K, cfg=cfg)
    assert z == pytest.approx(excess_z(30, 100, 10, len(other))) and z > 3
    assert agreement == pytest.approx(1 - 10 / len(other))  # ~0.97: not what blocks
    assert not done
    # the class is gone from the forget rows: done, as long as agreement holds
    z, agreement, done = _stop("class", (np.zeros(100, int), forget_y), (pred_u, y_u), y_u,
                               forget_class=K, cfg=cfg)
    assert z == pytest.approx(excess_z(0, 100, 10, len(other))) and z < 0 and done
    # the default bound (0.98) asks more agreement than ~0.97: not done yet
    assert not _stop("class", (np.zeros(100, int), forget_y), (pred_u, y_u), y_u,
                     forget_class=K)[2]
    moved = other[10:40]  # 30 more rows off the original's prediction, none onto k
    drifted = _set(pred_u, moved, _wrong(y_u[moved], avoid=K))
    z, agreement, done = _stop("class", (np.zeros(100, int), forget_y), (drifted, y_u), y_u,
                               forget_class=K, cfg=cfg)
    assert z < 0 and agreement == pytest.approx(1 - 40 / len(other)) and agreement < 0.95
    assert not done


def test_samples_stop_compares_accuracy_on_the_probe_with_the_reference_rows() -> None:
    """Accuracy 95/100 on the forget probe vs 300/400 on the reference: memorised. Rows of
    the forget set outside the probe do not count, nor anchor rows past `probe_size`."""
    y_u = _labels(500, 1)
    pred_u = _set(y_u, np.arange(100), _wrong(y_u[:100]))  # 300 of the first 400 right;
    pred_u = _set(pred_u, np.arange(400, 500), _wrong(y_u[400:]))  # past probe_size: ignored
    y_f = _labels(150, 2)
    pred_f = _set(y_f, np.arange(95, 150), _wrong(y_f[95:]))
    probe = torch.arange(100)  # 95 right of 100; the 50 rows after are all wrong
    cfg = DMConfig(probe_size=400)
    z, agreement, done = _stop("samples", (pred_f, y_f), (pred_u, y_u), y_u, probe, cfg=cfg)
    assert z == pytest.approx(excess_z(95, 100, 300, 400)) and z > 3
    assert agreement == pytest.approx(0.75) and not done
    # as often right as unseen rows, the model otherwise the original: done
    pred_f = _set(y_f, np.arange(75, 150), _wrong(y_f[75:]))
    z, agreement, done = _stop("samples", (pred_f, y_f), (y_u, y_u), y_u, probe, cfg=cfg)
    assert z == pytest.approx(excess_z(75, 100, 400, 400)) and agreement == 1.0 and done


def test_backdoor_stop_takes_the_larger_excess_of_stamped_and_forget_rows() -> None:
    """Target 0: clean anchor rows hit it 5 times; stamped anchor rows or forget rows hitting
    it more often each raise z, and z is the larger excess of the two."""
    target = 0
    trigger = TriggerSpec(size=1, margin=0, target=target)
    y_u = _labels(300, 3)
    clean = np.flatnonzero(y_u != target)
    pred_u = _set(y_u, clean[:5], target)
    stamped = _set(y_u, clean[:50], target)
    pred_f = _set(np.ones(100, int), np.arange(2), target)
    base = (5, len(clean))
    z, _, done = _stop("backdoor", (pred_f, pred_f), (pred_u, y_u), y_u,
                       stamped_pred=stamped, trigger=trigger)
    assert z == pytest.approx(excess_z(50, len(clean), *base)) and not done
    pred_f = _set(pred_f, np.arange(60), target)
    z, _, _ = _stop("backdoor", (pred_f, pred_f), (pred_u, y_u), y_u, stamped_pred=stamped,
                    trigger=trigger)
    assert z == pytest.approx(excess_z(60, 100, *base))
    # the trigger does nothing to unseen rows, and the forget rows never hit the target
    z, _, done = _stop("backdoor", (np.ones(100, int), np.ones(100, int)), (pred_u, y_u), y_u,
                       stamped_pred=pred_u, trigger=trigger)
    assert z == 0.0 and done


def test_stop_z_tolerates_that_many_standard_errors() -> None:
    """`stop_z` is the tolerance on z: a gap of ~2 standard errors stops at stop_z 3, not 1."""
    y_u = _labels(400, 4)
    other = np.flatnonzero(y_u != K)
    pred_u = _set(_set(y_u, other[:10], K), np.flatnonzero(y_u == K), 0)
    pred_f = _set(np.zeros(100, int), np.arange(6), K)
    for stop_z in (1.0, 3.0):
        z, _, done = _stop("class", (pred_f, np.full(100, K)), (pred_u, y_u), y_u,
                           cfg=DMConfig(stop_z=stop_z, min_agreement=0.95), forget_class=K)
        assert 1 < z < 3 and done == (stop_z == 3.0)


@pytest.mark.parametrize("encoded", [True, False])
def test_gather_is_the_drawn_rows_of_each_pool_back_to_back(encoded: bool) -> None:
    """dm's one-buffer batch equals indexing each pool and concatenating, for cached
    features (float) and for raw images (uint8, scaled to [0, 1] on the way)."""
    from forgetflow.core.unlearn.dm_streams import gather

    gen = torch.Generator().manual_seed(0)
    if encoded:
        pools = [Pool(torch.randn(n, 3, 2, 2, generator=gen), torch.zeros(n, dtype=torch.long),
                      True) for n in (7, 5, 9)]
    else:
        pools = [Pool(torch.randint(0, 256, (n, 1, 4, 4), generator=gen, dtype=torch.uint8),
                      torch.zeros(n, dtype=torch.long), False) for n in (7, 5, 9)]
    draws = [(p, torch.randint(0, len(p), (k,), generator=gen)) for p, k in zip(pools, (4, 3, 6),
                                                                               strict=True)]
    out = gather(draws, torch.device("cpu"))
    expected = torch.cat([p.input(idx, torch.device("cpu")) for p, idx in draws])
    assert out.dtype == torch.float32 and out.shape == (13, *pools[0].x.shape[1:])
    assert torch.equal(out, expected)
    if not encoded:
        assert torch.equal(out[:4], pools[0].x[draws[0][1]].float() / 255.0)
