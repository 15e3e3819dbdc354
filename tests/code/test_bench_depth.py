"""The calibrated depth index on constructed numbers: the index formula and its per-seed
aggregation, the budget rule (cheapest separating budget, or none), the stored budgets read
back by bench rows, and the balanced class metric that an all-one-class model cannot win."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from forgetflow.bench.aggregate import depth_index, format_table, summarize
from forgetflow.bench.relearn_budget import (
    DEFAULT,
    load_budget,
    select_budget,
    separates,
    separation,
)
from forgetflow.core.attacks import RelearnConfig, relearn_curve
from forgetflow.core.data.tensors import ImageSet


def test_depth_index_ends_and_middle() -> None:
    assert depth_index(0.9, 0.9, 0.5) == 0.0            # identity itself
    assert depth_index(0.5, 0.9, 0.5) == 1.0            # Retrain itself
    assert depth_index(0.7, 0.9, 0.5) == pytest.approx(0.5)
    assert depth_index(0.7, 0.8, 0.8) is None           # identity == Retrain: undefined
    assert depth_index(None, 0.9, 0.5) is None and depth_index(float("nan"), 0.9, 0.5) is None


def _rows(seed: int, ident: float, gold: float, fresh: float, dm: float,
          source: str = "calibrated") -> list[dict]:
    budget = {"source": source}
    return [{"method": m, "seed": seed, "seconds": 1.0, "relearn_acc": v, "relearn_budget": budget}
            for m, v in (("retrain", gold), ("retrain_fresh", fresh), ("identity", ident),
                         ("dm", dm))]


def test_depth_index_is_per_seed_with_the_floor_row_beside_it() -> None:
    # seed 0: dm halfway; seed 1: dm as deep as Retrain (the per-seed denominators differ)
    result = {"rows": _rows(0, 0.9, 0.5, 0.55, 0.7) + _rows(1, 0.8, 0.6, 0.6, 0.6)}
    stats = summarize(result)
    assert stats["dm"]["depth_index"][0] == pytest.approx(0.75)
    assert stats["identity"]["depth_index"][0] == 0.0
    assert stats["retrain"]["depth_index"][0] == 1.0
    assert stats["retrain_fresh"]["depth_index"][0] == pytest.approx((0.875 + 1.0) / 2)
    assert "floor (the retrain_fresh row): 0.94" in format_table(result)


def test_no_depth_index_without_a_calibrated_budget() -> None:
    result = {"rows": _rows(0, 0.9, 0.5, 0.55, 0.7, source="default")}
    assert summarize(result)["dm"]["depth_index"] is None


def _stats(ident: float, gold: float, fresh: float, **other: float) -> dict:
    return separation([{"identity": ident, "retrain": gold, "retrain_fresh": fresh, **other}])


def test_budget_rule_picks_the_cheapest_separating_budget() -> None:
    cheap, mid, dear = (RelearnConfig(steps=s, shown=8) for s in (5, 15, 40))
    case = {cheap: _stats(0.80, 0.78, 0.77),   # gap 2 pt: too small
            mid: _stats(0.90, 0.60, 0.58),     # gap 30 pt >= 3 x 2 pt
            dear: _stats(0.90, 0.50, 0.50)}
    assert select_budget({"class 2": case}) == mid
    # a second case where only the dearest budget separates: every case must agree
    other = {cheap: _stats(0.9, 0.5, 0.5), mid: _stats(0.9, 0.6, 0.8), dear: _stats(0.9, 0.5, 0.52)}
    assert select_budget({"class 2": case, "class 5": other}) == dear


def test_budget_rule_reports_none_when_nothing_separates() -> None:
    b = RelearnConfig(steps=5, shown=8)
    assert select_budget({"c": {b: _stats(0.9, 0.6, 0.8)}}) is None  # spread 20 pt, gap 30
    assert select_budget({"c": {b: _stats(0.5, 0.9, 0.9)}}) is None  # Retrain relearns more
    assert select_budget({}) is None


def test_budget_rule_wants_hiding_separated_too() -> None:
    """Before any attack the original already differs from Retrain (forget accuracy); a
    budget under which the hiding row looks like Retrain measures outputs, not depth."""
    assert not separates(_stats(0.9, 0.45, 0.45, logit_mask=0.45))
    assert separates(_stats(0.9, 0.45, 0.45, logit_mask=0.7))


def test_budget_rule_wants_an_attack_that_acts() -> None:
    """Identity above Retrain with Retrain where it was before the attack: that is the
    output metric again (random requests on the CNN), not relearning."""
    none = {"identity": 0.94, "retrain": 0.88, "retrain_fresh": 0.88}
    still = separation([{**none, "identity": 0.94}], before=[none])
    assert still["moved"] == pytest.approx(0.0) and not separates(still)
    moved = separation([{"identity": 0.95, "retrain": 0.60, "retrain_fresh": 0.61}],
                       before=[{"identity": 0.95, "retrain": 0.02, "retrain_fresh": 0.02}])
    assert separates(moved)


def test_spread_is_the_mean_absolute_retrain_difference() -> None:
    st = separation([{"identity": 0.9, "retrain": 0.5, "retrain_fresh": 0.6},
                     {"identity": 0.8, "retrain": 0.5, "retrain_fresh": 0.4}])
    assert st["gap"] == pytest.approx(0.35) and st["spread"] == pytest.approx(0.1)
    assert st["spread_std"] == pytest.approx(np.std([-0.1, 0.1], ddof=1))


def test_bench_rows_read_the_stored_budget(tmp_path: Path) -> None:
    path = tmp_path / "budgets.json"
    chosen = RelearnConfig(steps=15, shown=8)
    path.write_text(json.dumps({"budgets": {"fashion-mnist/cnn/class": asdict(chosen),
                                            "fashion-mnist/cnn/backdoor": None}}))
    cfg, info = load_budget("fashion-mnist", "cnn", "class", path)
    assert cfg == chosen and info["source"] == "calibrated" and info["steps"] == 15
    assert load_budget("fashion-mnist", "cnn", "backdoor", path) == (None, {"source": "none"})
    cfg, info = load_budget("fashion-mnist", "resnet8", "class", path)
    assert cfg == DEFAULT and info["source"] == "default"


class _Fixed(nn.Module):
    """A linear model whose logits are fixed per input: predicts `label` for every image, or
    (label None) the class written in the first pixel."""

    def __init__(self, label: int | None) -> None:
        super().__init__()
        self.label, self.lin = label, nn.Linear(1, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        truth = (x[:, 0, 0, 0] * 255).round().long() if self.label is None else \
            torch.full((len(x),), self.label)
        return nn.functional.one_hot(truth, 4).float() * 10 + 0 * self.lin(x[:, :1, 0, 0])


def _set(labels: list[int]) -> ImageSet:
    images = torch.zeros(len(labels), 1, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.tensor(labels, dtype=torch.uint8)
    return ImageSet(images, torch.tensor(labels), np.array([f"x{i}" for i in range(len(labels))]))


def test_balanced_class_metric_is_not_won_by_predicting_the_class_everywhere() -> None:
    forget, retain = _set([2] * 20), _set([0, 1, 3] * 10)
    test = _set([0, 1, 2, 3] * 10)
    cfg = RelearnConfig(steps=0, shown=4)
    overshoot = relearn_curve(_Fixed(2), forget, retain, test, cfg=cfg, forget_class=2)[0]
    knows = relearn_curve(_Fixed(None), forget, retain, test, cfg=cfg, forget_class=2)[0]
    assert overshoot.held_acc == 1.0 and overshoot.other_acc == 0.0
    assert overshoot.metric == 0.5 and knows.metric == 1.0
    # without the class the plain held-row accuracy would call the overshoot perfect
    assert relearn_curve(_Fixed(2), forget, retain, test, cfg=cfg)[0].metric == 1.0
