"""Code tier: the metrics of docs/design.md §10 on constructed inputs with known answers."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from forgetflow.core.data.tensors import ImageSet
from forgetflow.core.evaluate import EvalData, evaluate
from forgetflow.core.metrics import (
    GAP_KEYS,
    accuracy,
    attack_success_rate,
    avg_gap,
    discriminator_auc,
    mia_efficacy,
    mia_loss_acc,
    output_features,
    per_sample_loss,
    predict_logits,
    true_class_confidence,
)
from forgetflow.core.scenarios import scenario_named
from forgetflow.core.triggers import TriggerSpec, stamp


def beta(a: float, b: float, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).beta(a, b, n)


# --- membership inference: SVC on confidences ---------------------------------------------


def test_mia_efficacy_is_near_half_for_identical_distributions():
    # With nothing to learn the RBF-SVC's boundary is arbitrary, so a single draw lands
    # anywhere in ~[0.1, 0.95]; over draws the share predicted non-member centres on 0.5.
    values = [
        mia_efficacy(beta(5, 2, 600, 100 + s), beta(5, 2, 600, 200 + s), beta(5, 2, 600, 300 + s),
                     seed=s)
        for s in range(8)
    ]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert 0.35 <= float(np.mean(values)) <= 0.65


def test_mia_efficacy_is_one_when_forget_looks_unseen():
    retain = beta(40, 1, 2000, 1)  # members: confident
    test = beta(2, 2, 2000, 2)  # non-members: unsure, separable from retain
    forget_like_test = beta(2, 2, 1000, 3)
    assert mia_efficacy(retain, test, forget_like_test) >= 0.95
    forget_like_retain = beta(40, 1, 1000, 4)
    assert mia_efficacy(retain, test, forget_like_retain) <= 0.05


def test_mia_efficacy_uses_balanced_classes():
    # 10x more members than non-members must not tip the SVC towards "member"
    retain, test = beta(40, 1, 5000, 5), beta(2, 2, 500, 6)
    assert mia_efficacy(retain, test, beta(2, 2, 500, 7)) >= 0.9


def test_mia_efficacy_is_deterministic_for_a_seed():
    retain, test, forget = beta(5, 2, 1000, 8), beta(4, 2, 1000, 9), beta(4, 2, 300, 10)
    assert mia_efficacy(retain, test, forget, seed=3) == mia_efficacy(retain, test, forget, seed=3)


# --- membership inference: loss-threshold attack ------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_mia_loss_acc_is_half_for_identical_losses(seed):
    rng = np.random.default_rng(seed)
    forget, test = rng.exponential(0.5, 3000), rng.exponential(0.5, 3000)
    assert abs(mia_loss_acc(forget, test, seed=seed) - 0.5) <= 0.05


def test_mia_loss_acc_is_one_for_separable_losses():
    rng = np.random.default_rng(0)
    forget = rng.uniform(0.0, 0.05, 800)  # memorised: near-zero loss
    test = rng.uniform(1.0, 3.0, 800)
    assert mia_loss_acc(forget, test) >= 0.99


def test_mia_loss_acc_balances_unequal_sets():
    rng = np.random.default_rng(0)
    # identical distributions but 20x more test samples: an unbalanced fit would score ~0.95
    forget, test = rng.exponential(0.5, 200), rng.exponential(0.5, 4000)
    assert abs(mia_loss_acc(forget, test) - 0.5) <= 0.1


# --- discriminator --------------------------------------------------------------------------


def test_discriminator_auc_half_for_same_and_one_for_separable():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1500, 4)), rng.normal(size=(1500, 4))
    assert abs(discriminator_auc(a, b) - 0.5) <= 0.05
    shifted = rng.normal(size=(1500, 4)) + np.array([4.0, 0.0, 0.0, 0.0])
    assert discriminator_auc(a, shifted) >= 0.99
    # the direction does not matter: it is a discriminator, not a one-sided test
    assert discriminator_auc(shifted, a) >= 0.99


def test_discriminator_auc_is_nan_for_tiny_sets():
    rng = np.random.default_rng(0)
    assert math.isnan(discriminator_auc(rng.normal(size=(5, 3)), rng.normal(size=(50, 3))))


def test_output_features_shapes_and_values():
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2])
    f = output_features(logits, labels)
    assert f.shape == (2, 4)
    assert output_features(logits, None).shape == (2, 3)
    assert f[1, 2] == pytest.approx(math.log(3), rel=1e-5)  # uniform: entropy log 3
    assert f[1, 3] == pytest.approx(math.log(3), rel=1e-5)  # loss on any label: log 3
    assert f[0, 0] > f[1, 0] and f[0, 3] < f[1, 3]


# --- accuracies and per-sample quantities --------------------------------------------------


def test_accuracy_confidence_and_loss():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    labels = torch.tensor([0, 1, 1])
    assert accuracy(logits, labels) == pytest.approx(2 / 3)
    assert math.isnan(accuracy(logits[:0], labels[:0]))
    conf = true_class_confidence(logits, labels)
    p = 1 / (1 + math.exp(-2))
    np.testing.assert_allclose(conf, [p, p, 1 / (1 + math.exp(3))], rtol=1e-5)
    np.testing.assert_allclose(per_sample_loss(logits, labels), -np.log(conf), rtol=1e-5)


class Constant(nn.Module):
    """Always the same class; no parameters at all."""

    def __init__(self, label: int, num_classes: int = 10) -> None:
        super().__init__()
        self.label, self.num_classes = label, num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(x), self.num_classes)
        out[:, self.label] = 1.0
        return out


class TriggerDetector(nn.Module):
    """Predicts `target` iff the bottom-right 3x3 of channel 0 is bright, else class 1."""

    def __init__(self, target: int) -> None:
        super().__init__()
        self.target = target
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dtype == torch.float32 and float(x.max()) <= 1.0  # the model input contract
        lit = x[:, 0, -4:-1, -4:-1].mean((1, 2)) > 0.9
        out = torch.zeros(len(x), 10)
        out[lit, self.target] = self.scale
        out[~lit, 1] = self.scale
        return out


def target_test_set():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 100, (40, 1, 16, 16), generator=g, dtype=torch.uint8)
    labels = torch.arange(40) % 4
    ids = np.asarray([f"t:test:{i}" for i in range(40)], dtype=object)
    return ImageSet(images, labels, ids)


def test_attack_success_rate_on_constant_models():
    test = target_test_set()
    spec = TriggerSpec(size=3, target=2)
    assert attack_success_rate(Constant(2), test, spec) == 1.0
    assert attack_success_rate(Constant(3), test, spec) == 0.0


def test_attack_success_rate_counts_only_stamped_non_target_images():
    test = target_test_set()
    spec = TriggerSpec(size=3, margin=1, position="bottom-right", target=1)
    assert attack_success_rate(TriggerDetector(target=1), test, spec) == 1.0
    assert attack_success_rate(TriggerDetector(target=3), test, spec) == 0.0
    elsewhere = TriggerSpec(size=3, position="top-left", target=1)
    # the detector looks bottom-right and answers class 1 (= the target) when it sees nothing
    assert attack_success_rate(TriggerDetector(target=0), test, elsewhere) == 1.0
    assert attack_success_rate(TriggerDetector(target=1), test, TriggerSpec(size=3, target=0)) \
        == 0.0


def test_predict_logits_batches_consistently_and_handles_parameterless_models():
    test = target_test_set()
    model = TriggerDetector(target=1)
    a = predict_logits(model, test.images, batch=7)
    b = predict_logits(model, test.images)
    assert a.shape == (40, 10) and torch.equal(a, b)
    assert not model.training
    c = predict_logits(Constant(5), stamp(test.images, TriggerSpec(size=2)))
    assert c.argmax(1).eq(5).all()


def test_avg_gap_arithmetic():
    retrain = {"forget_acc": 0.80, "retain_acc": 0.99, "test_acc": 0.90, "mia_efficacy": 0.30,
               "asr": 0.01}
    row = {"forget_acc": 0.90, "retain_acc": 0.97, "test_acc": 0.91, "mia_efficacy": 0.10,
           "asr": 0.99}
    # |10| + |2| + |1| + |20| = 33 pt over 4 keys; asr is not part of the gap
    assert avg_gap(row, retrain) == pytest.approx(8.25)
    assert avg_gap(retrain, row) == pytest.approx(8.25)
    assert avg_gap(row, row) == 0.0
    assert GAP_KEYS == ("forget_acc", "retain_acc", "test_acc", "mia_efficacy")


# --- evaluate(): every metric, per scenario ------------------------------------------------


def toy_eval_data(scenario: str, **kw) -> EvalData:
    g = torch.Generator().manual_seed(0)

    def block(n: int, offset: int) -> ImageSet:
        imgs = torch.randint(0, 200, (n, 1, 12, 12), generator=g, dtype=torch.uint8)
        labels = torch.arange(n) % 4
        ids = np.asarray([f"t:train:{offset + i}" for i in range(n)], dtype=object)
        return ImageSet(imgs, labels, ids)

    forget, retain, test, unseen = block(60, 0), block(200, 100), block(200, 400), block(120, 700)
    return EvalData(scenario_named(scenario).target(forget, unseen, **kw), retain, test)


class Mean(nn.Module):
    """A fixed, input-dependent classifier: logits from 4 image-quadrant means."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(8.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = [x[:, 0, :6, :6], x[:, 0, :6, 6:], x[:, 0, 6:, :6], x[:, 0, 6:, 6:]]
        return self.w * torch.stack([t.mean((1, 2)) for t in q], 1)


def test_evaluate_random_scenario_reports_every_metric():
    row = evaluate(Mean(), toy_eval_data("samples"))
    assert set(row) == {"forget_acc", "retain_acc", "test_acc", "test_acc_remaining", "asr",
                        "mia_efficacy", "mia_loss_acc", "third_party_auc"}
    assert row["asr"] is None and row["test_acc_remaining"] is None
    for k in ("forget_acc", "retain_acc", "test_acc", "mia_efficacy", "mia_loss_acc",
              "third_party_auc"):
        assert isinstance(row[k], float) and 0.0 <= row[k] <= 1.0, k
    # forget/retain/test come from one distribution: no attack should do much better than chance
    assert 0.15 <= row["retain_acc"] <= 0.4
    assert row["third_party_auc"] <= 0.75


@pytest.mark.parametrize("rows", [1, 2, 9])
def test_evaluate_a_forget_set_of_a_few_rows_leaves_the_unfittable_scores_empty(rows: int):
    """A request may name one sample: the accuracies are still reported, the membership and
    discriminator scores (which need a classifier fitted on both sides) are None, no crash."""
    data = toy_eval_data("samples")
    few = replace(data, target=scenario_named("samples").target(
        data.forget.take(np.arange(rows)), data.target.third_party))
    row = evaluate(Mean(), few)
    assert isinstance(row["forget_acc"], float) and isinstance(row["test_acc"], float)
    assert row["mia_loss_acc"] is None and row["third_party_auc"] is None
    assert np.isnan(mia_loss_acc(np.full(rows, 0.1), np.linspace(0.0, 3.0, 100)))


def test_evaluate_class_and_backdoor_scenarios():
    row = evaluate(Constant(2, num_classes=4), toy_eval_data("class", forget_class=2))
    assert row["test_acc"] == pytest.approx(0.25)
    assert row["test_acc_remaining"] == 0.0  # only class 2 is right, and it is excluded
    spec = TriggerSpec(size=3, target=2)
    row = evaluate(Constant(2, num_classes=4), toy_eval_data("backdoor", trigger=spec))
    assert row["asr"] == 1.0
