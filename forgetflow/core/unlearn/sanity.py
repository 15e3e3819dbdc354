"""Sanity rows that must *fail* an honest evaluation (docs/design.md §10).

`identity` returns the original untouched. `logit_mask` (class requests only) changes no
weight except the forgotten class's row of the last linear layer: weight row 0 and bias -30,
so the class is never predicted while every feature stays as it was. A target that
`logit_mask` passes shows hiding, not forgetting.
"""

from __future__ import annotations

import torch

from forgetflow.core.attacks import final_linear
from forgetflow.core.models import Classifier
from forgetflow.core.unlearn.base import Unlearner, UnlearnTask, register_unlearner

MASK_BIAS = -30.0


@register_unlearner("identity")
class Identity(Unlearner):
    """The original model: no training, nothing forgotten."""

    def unlearn(self, task: UnlearnTask) -> Classifier:
        return task.fresh_copy()


@register_unlearner("logit_mask")
class LogitMask(Unlearner):
    """Hide a forgotten class in the output layer; same architecture, no training."""

    def unlearn(self, task: UnlearnTask) -> Classifier:
        if task.forget_class is None:
            raise ValueError("logit_mask applies to class requests only "
                             f"(scenario {task.scenario!r})")
        model = task.fresh_copy()
        layer = final_linear(model)
        with torch.no_grad():
            layer.weight[task.forget_class].zero_()
            if layer.bias is not None:
                layer.bias[task.forget_class] = MASK_BIAS
        return model
