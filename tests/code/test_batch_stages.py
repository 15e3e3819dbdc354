"""A batch's stages cover the rows of class and backdoor requests that a failed earlier batch
took out of the data (the parent model still holds them) by those requests' own scenarios,
and class stages read unseen rows of such a class from the parent's data version."""

from __future__ import annotations

import numpy as np
import torch

from forgetflow.core.data.tensors import ImageSet
from forgetflow.core.forget import ForgetRequest
from forgetflow.core.triggers import TriggerSpec
from forgetflow.pipeline.batch import (
    BatchPlan,
    class_reference_pool,
    forgotten_classes,
    plan_stages,
)


def image_set(labels: list[int], prefix: str) -> ImageSet:
    n = len(labels)
    return ImageSet(torch.zeros(n, 1, 8, 8, dtype=torch.uint8), torch.tensor(labels),
                    np.asarray([f"{prefix}{i}" for i in range(n)], dtype=object))


def test_inherited_class_and_backdoor_rows_get_their_own_stages() -> None:
    # forget rows: 2 samples of this batch (labels 0, 4), 3 rows of inherited class 3,
    # 2 poisoned rows of an inherited backdoor (labels 5, 6)
    forget = image_set([0, 4, 3, 3, 3, 5, 6], "f")
    trigger = TriggerSpec()
    plan = BatchPlan(accepted={7: ForgetRequest("samples", ids=("f0", "f1"))}, rejected={},
                     selection=None, train_ids_of={7: {"f0", "f1"}},
                     inherited={2: ForgetRequest("class", label=3),
                                4: ForgetRequest("backdoor", trigger=trigger)},
                     inherited_ids_of={4: {"f5", "f6", "third-party-row"}})
    assert forgotten_classes(plan) == [3]
    pool = image_set([0, 1, 2, 4, 5], "u")
    stages = {s.name: s.target for s in plan_stages(plan, forget, pool, pool)}
    assert list(stages) == ["backdoor-4", "class-3", "samples"]
    assert sorted(stages["backdoor-4"].forget.ids) == ["f5", "f6"]
    assert stages["backdoor-4"].trigger == trigger
    assert sorted(stages["class-3"].forget.ids) == ["f2", "f3", "f4"]
    assert stages["class-3"].forget_class == 3
    assert sorted(stages["samples"].forget.ids) == ["f0", "f1"]


def test_class_reference_pool_adds_the_parents_rows_of_inherited_classes_only() -> None:
    base = image_set([0, 1, 2], "u")  # the failed batch dropped u3, u4 (class 3) and u5
    parent = image_set([0, 1, 2, 3, 3, 1], "u")
    pool = class_reference_pool(base, parent, [3])
    assert sorted(pool.ids) == ["u0", "u1", "u2", "u3", "u4"]
    assert class_reference_pool(base, parent, []) is base
