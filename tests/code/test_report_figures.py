"""Batch figures from real (tiny) models on the bundled digits: every figure that applies is
drawn and is not blank, class and backdoor batches get theirs, and the triggered-example grid
is made of held-out test images, never forget-set rows."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from forgetflow.core.data.tensors import DataBundle
from forgetflow.core.scenarios import BACKDOOR, CLASS, SAMPLES, ForgetTarget
from forgetflow.core.training import TrainConfig, spec_for, train_model
from forgetflow.core.triggers import TriggerSpec, stamp
from forgetflow.pipeline.batch import Stage
from forgetflow.report import figures
from forgetflow.report.batch_figures import (
    build_batch_figures,
    forget_rows,
    kept_classes,
    triggered_examples,
)


def pixel_std(fig) -> float:
    image = np.asarray(Image.open(io.BytesIO(figures.png_bytes(fig))).convert("L"), float)
    return float(image.std())


@pytest.fixture(scope="module")
def models(digits_bundle: DataBundle):
    spec = spec_for(digits_bundle, "cnn")
    made = [train_model(digits_bundle.train, spec, TrainConfig(epochs=1, batch_size=64,
                                                               lr=0.01, seed=s),
                        progress=False)[0] for s in (0, 1)]
    return made[0], made[1]


def stages_of(bundle: DataBundle, trigger: TriggerSpec) -> list[Stage]:
    train = bundle.train
    labels = train.labels.numpy()
    pool = bundle.third_party
    return [Stage("backdoor-1", ForgetTarget(BACKDOOR, train.take(np.arange(0, 20)), pool,
                                             trigger=trigger)),
            Stage("class-3", ForgetTarget(CLASS, train.where(labels == 3), pool, forget_class=3)),
            Stage("samples", ForgetTarget(SAMPLES, train.take(np.flatnonzero(labels != 3)[20:80]),
                                          pool))]


def test_every_applicable_figure_is_drawn(digits_bundle: DataBundle, models) -> None:
    trigger = TriggerSpec(size=3, target=0)
    stages = stages_of(digits_bundle, trigger)
    figs = build_batch_figures(*models, stages, digits_bundle, forgotten=[3])
    assert set(figs) == {"confidence_ecdf", "loss_ecdf", "mia_roc", "class_accuracy",
                         "backdoor"}
    for name, fig in figs.items():
        assert pixel_std(fig) > 10, f"{name} looks blank"
    plain_only = build_batch_figures(*models, stages[2:], digits_bundle, forgotten=[])
    assert set(plain_only) == {"confidence_ecdf", "loss_ecdf", "mia_roc"}


def test_the_gate_depth_checks_get_a_figure(digits_bundle: DataBundle, models) -> None:
    from forgetflow.core.params import DepthGateParams
    from forgetflow.pipeline.depth import depth_checks

    stages = stages_of(digits_bundle, TriggerSpec(size=3, target=0))
    checks = depth_checks(models[1], models[0], stages, digits_bundle.train,
                          digits_bundle.test, digits_bundle.third_party, None,
                          DepthGateParams(min_rows=10), seed=0)
    assert [c["check"].split(": depth ")[1] for c in checks] == [
        "reimplant_gap", "class_feature_drop", "relearn_gap"]
    figs = build_batch_figures(*models, stages[2:], digits_bundle, forgotten=[], checks=checks)
    assert "depth_checks" in figs and pixel_std(figs["depth_checks"]) > 10


def test_curves_compare_sample_rows_not_class_rows(digits_bundle: DataBundle) -> None:
    stages = stages_of(digits_bundle, TriggerSpec(size=3, target=0))
    assert set(forget_rows(stages).ids.tolist()) == set(stages[2].target.forget.ids.tolist())
    assert len(forget_rows(stages[:2])) == (len(stages[0].target.forget)
                                            + len(stages[1].target.forget))
    kept = kept_classes(digits_bundle.test, [3])
    assert 3 not in set(kept.labels.tolist())
    assert len(kept) == int((digits_bundle.test.labels != 3).sum())


def test_triggered_grid_uses_stamped_test_images_only(digits_bundle: DataBundle) -> None:
    spec = TriggerSpec(size=3, target=0)
    grid = triggered_examples(digits_bundle.test, spec, n=8)
    assert len(grid) == 8
    assert set(grid.ids.tolist()) <= set(digits_bundle.test.ids.tolist())
    assert not set(grid.ids.tolist()) & set(digits_bundle.train.ids.tolist())
    assert (grid.labels != spec.target).all()
    originals = digits_bundle.test.take(np.flatnonzero(
        digits_bundle.test.labels.numpy() != spec.target)[:8])
    assert torch.equal(grid.images, stamp(originals.images, spec))


def test_bench_scatter_has_one_panel_per_scenario() -> None:
    points = [{"scenario": sc, "method": m, "seconds": s, "avg_gap": g}
              for sc in ("class", "random") for m, s, g in
              (("dm", 3.0, 0.5), ("retrain", 120.0, 0.0), ("finetune", 20.0, 4.0))]
    fig = figures.bench_scatter_figure(points, ["class", "random"])
    visible = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in visible] == ["class", "random"]
    assert all(ax.get_xscale() == "log" for ax in visible)
    assert pixel_std(fig) > 10
