"""Every registered scenario answers every hook the layers call, validates its targets, and
means what its module says (reference rows, kept test rows, output check, dm targets)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forgetflow.core.data.tensors import ImageSet
from forgetflow.core.matching import OriginalOutputs, StopScores
from forgetflow.core.params import GateParams
from forgetflow.core.scenarios import (
    BACKDOOR,
    CLASS,
    SAMPLES,
    SCENARIOS,
    ForgetTarget,
    ScenarioError,
    scenario_named,
)
from forgetflow.core.triggers import TriggerSpec

TRIGGER = TriggerSpec(size=2, target=1)


def images(n: int, labels: np.ndarray, seed: int = 0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    return ImageSet(torch.randint(0, 255, (n, 1, 8, 8), generator=g, dtype=torch.uint8),
                    torch.as_tensor(labels, dtype=torch.long),
                    np.asarray([f"t:train:{seed}-{i}" for i in range(n)], dtype=object))


def target_of(name: str) -> ForgetTarget:
    pool = images(40, np.arange(40) % 4, 1)
    return scenario_named(name).target(images(12, np.full(12, 2)), pool, 2, TRIGGER)


def test_registry_names_each_scenario_once() -> None:
    assert SCENARIOS == {"samples": SAMPLES, "class": CLASS, "backdoor": BACKDOOR}
    with pytest.raises(ScenarioError, match="unknown scenario 'random'"):
        scenario_named("random")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_target_keeps_only_what_the_scenario_takes(name: str) -> None:
    t = target_of(name)
    assert t.scenario is SCENARIOS[name] and str(t.scenario) == name
    assert (t.forget_class is not None) == (name == "class")
    assert (t.trigger is not None) == (name == "backdoor")
    both = dict(forget_class=2, trigger=TRIGGER)
    with pytest.raises(ScenarioError):
        ForgetTarget(SCENARIOS[name], t.forget, t.third_party, **both)
    if name != "samples":
        with pytest.raises(ScenarioError, match="needs a"):
            ForgetTarget(SCENARIOS[name], t.forget, t.third_party)
    with pytest.raises(ScenarioError, match="expected a Scenario"):
        ForgetTarget(name, t.forget, t.third_party)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_hook_answers(name: str) -> None:
    """No registered scenario leaves a hook to the base class's NotImplementedError."""
    t = target_of(name)
    scenario = t.scenario
    check = scenario.output_check(t, GateParams())
    assert check.metric in {"forget_acc", "asr", "third_party_auc"} and check.limit >= 0
    assert scenario.depth_check_name
    logits = torch.randn(len(t.forget), 4)
    original = OriginalOutputs(logits=lambda x, y: torch.randn(len(y), 4),
                               forget_logits=lambda: logits,
                               subsample=lambda data, cap: data)
    targets = scenario.match_targets(t, original)
    row = torch.arange(3)
    assert torch.isfinite(targets.match_loss(torch.randn(3, 4), row))
    preds = torch.tensor([2, 2, 1, 0])
    scores = StopScores(pred_forget=preds, labels_forget=torch.full((4,), 2),
                        pred_unseen=preds.flip(0), labels_unseen=torch.tensor([0, 1, 2, 3]),
                        stamped_pred=lambda mask: torch.zeros(int(mask.sum()), dtype=torch.long))
    assert np.isfinite(scenario.stop_z(t, scores))
    assert len(scenario.anchor(t)) <= len(t.third_party)


def test_reference_rows_are_what_a_never_trained_model_would_be_compared_with() -> None:
    pool = images(40, np.arange(40) % 4, 1)
    assert len(SAMPLES.reference(target_of("samples"), pool)) == 40
    assert set(CLASS.reference(target_of("class"), pool).labels.tolist()) == {2}
    assert 1 not in set(BACKDOOR.reference(target_of("backdoor"), pool).labels.tolist())
    assert 2 not in set(CLASS.anchor(target_of("class")).labels.tolist())
    kept = CLASS.kept_test(target_of("class"), np.array([0, 2, 2, 3]))
    assert kept.tolist() == [True, False, False, True]
    assert SAMPLES.kept_test(target_of("samples"), np.array([0, 2])) is None


def test_small_sample_requests_are_recorded_not_gated() -> None:
    gate = GateParams()
    small = target_of("samples")
    assert len(small.forget) < gate.min_auc_samples
    assert "no power" in SAMPLES.output_check(small, gate).not_gated
    assert CLASS.output_check(target_of("class"), gate).not_gated == ""


def test_class_stop_statistic_counts_predictions_of_the_forgotten_class() -> None:
    """All forget rows still predicted as the class while unseen rows never are: a large z;
    none predicted as it: z at or below 0 (the stopping test's pass side)."""
    t = target_of("class")
    unseen_labels = torch.arange(40) % 4

    def scores(pred_forget: torch.Tensor) -> StopScores:
        return StopScores(pred_forget, torch.full((12,), 2), (unseen_labels + 1) % 4,
                          unseen_labels, lambda mask: torch.zeros(0))

    assert CLASS.stop_z(t, scores(torch.full((12,), 2))) > 3
    assert CLASS.stop_z(t, scores(torch.zeros(12, dtype=torch.long))) <= 0


def test_class_anchor_keeps_the_other_classes_outputs_without_the_class() -> None:
    """dm's anchor on other-class rows: the original's distribution with the forgotten class
    removed (a model without the class), never a pull back towards it; other scenarios keep
    the original's softmax as it is."""
    logits = torch.tensor([[2.0, 0.0, 3.0, -1.0], [0.5, 0.5, 0.5, 0.5]])
    masked = CLASS.anchor_targets(target_of("class"), logits)
    assert torch.all(masked[:, 2] == 0)
    assert torch.allclose(masked.sum(1), torch.ones(2))
    kept = torch.softmax(logits[:, [0, 1, 3]], 1)
    assert torch.allclose(masked[:, [0, 1, 3]], kept)
    for other in (SAMPLES, BACKDOOR):
        name = "samples" if other is SAMPLES else "backdoor"
        assert torch.allclose(other.anchor_targets(target_of(name), logits),
                              torch.softmax(logits, 1))


def test_class_anchor_falls_back_to_the_class_own_unseen_rows_when_no_other_exists() -> None:
    """A tiny folder whose unseen rows are all of the forgotten class: the anchor is those rows
    (their target: the output without the class), never empty (an empty anchor crashed dm)."""
    t = target_of("class")
    assert sorted(set(CLASS.anchor(t).labels.tolist())) == [0, 1, 3]
    only_k = CLASS.target(images(12, np.full(12, 2)), images(3, np.full(3, 2), 1), 2)
    assert len(CLASS.anchor(only_k)) == 3
