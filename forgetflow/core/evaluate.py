"""One evaluation of a model against a forget request: every metric docs/design.md §10 names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from forgetflow.core.attacks import RelearnConfig, relearn_attack
from forgetflow.core.data.tensors import ImageSet
from forgetflow.core.metrics import (
    accuracy,
    attack_success_rate,
    discriminator_auc,
    mia_efficacy,
    mia_loss_acc,
    output_features,
    per_sample_loss,
    predict_logits,
    true_class_confidence,
)
from forgetflow.core.scenarios import ForgetTarget


@dataclass(frozen=True)
class EvalData:
    """The sets an evaluation reads. `target.forget` holds samples as trained on (poisoned
    labels); `target.third_party` is the unseen data evaluation compares against: pass the
    *holdout* split (never the reference part a method used), as the bench and the gate do.
    MIA non-members are test samples (the SalUn protocol), which no method sees either."""

    target: ForgetTarget
    retain: ImageSet
    test: ImageSet

    @property
    def forget(self) -> ImageSet:
        return self.target.forget

    def third_party_reference(self) -> ImageSet:
        """What forget samples should look like (the scenario says: same class for class
        requests, clean non-target images for backdoors, all unseen samples otherwise)."""
        return self.target.scenario.reference(self.target, self.target.third_party)


def depth_metrics(model, data: EvalData, seed: int = 0,
                  relearn: RelearnConfig | None = RelearnConfig()) -> dict[str, float | None]:
    """The attacks of forgetflow.core.attacks: relearn_acc (at budget `relearn`; None: not
    run) and probe_acc (None: n/a); backdoors add the clean test accuracy after relearning."""
    t = data.target
    res = None if relearn is None else relearn_attack(
        model, t.forget, data.retain, data.test, t.trigger, seed, relearn, t.forget_class)
    out = {"relearn_acc": None if res is None else res.metric,
           "probe_acc": t.scenario.probe(model, t, t.third_party, seed)}
    if t.trigger is not None:
        out["relearn_clean_acc"] = None if res is None else res.clean_acc
    return out


def evaluate(model, data: EvalData, seed: int = 0, depth: bool = False,
             relearn: RelearnConfig | None = RelearnConfig()) -> dict[str, float | None]:
    """All metrics as fractions in [0, 1]; `None` where a metric does not apply. `depth` adds
    the relearning and probe attacks (a few seconds more on the small CNN)."""
    lf = predict_logits(model, data.forget.images)
    lr = predict_logits(model, data.retain.images)
    lt = predict_logits(model, data.test.images)
    ref = data.third_party_reference()
    lu = predict_logits(model, ref.images)
    row: dict[str, float | None] = {
        "forget_acc": accuracy(lf, data.forget.labels),
        "retain_acc": accuracy(lr, data.retain.labels),
        "test_acc": accuracy(lt, data.test.labels),
        "test_acc_remaining": None,
        "asr": None,
    }
    t = data.target
    keep = t.scenario.kept_test(t, data.test.labels.numpy())
    if keep is not None:
        keep = torch.from_numpy(keep)
        row["test_acc_remaining"] = accuracy(lt[keep], data.test.labels[keep])
    row["mia_efficacy"] = mia_efficacy(
        true_class_confidence(lr, data.retain.labels),
        true_class_confidence(lt, data.test.labels),
        true_class_confidence(lf, data.forget.labels),
        seed,
    )
    row["mia_loss_acc"] = mia_loss_acc(
        per_sample_loss(lf, data.forget.labels), per_sample_loss(lt, data.test.labels), seed
    )
    use_labels = t.scenario.labels_are_true  # poisoned labels are not comparable to true ones
    row["third_party_auc"] = None if not len(ref) else discriminator_auc(
        output_features(lf, data.forget.labels if use_labels else None),
        output_features(lu, ref.labels if use_labels else None),
        seed,
    )
    if t.trigger is not None:
        row["asr"] = attack_success_rate(model, data.test, t.trigger)
    if depth:
        row.update(depth_metrics(model, data, seed, relearn))
    return {k: (None if v is None or np.isnan(v) else float(v)) for k, v in row.items()}
