"""Requests that are fine alone but break the forget-set rules together (two subjects who
between them hold every row of a class): the oldest are honoured, only the one that breaks
the union is refused, and unrelated requests of the batch stand."""

from __future__ import annotations

import numpy as np
import torch

from forgetflow.core.data.manifest import Manifest
from forgetflow.core.data.tensors import DataBundle, ImageSet
from forgetflow.core.forget import ForgetRequest
from forgetflow.pipeline.batch import plan_batch


def setup() -> tuple[Manifest, DataBundle]:
    # train: class 0 rows a0 a1 (alice) b0 (bob); class 1 rows c0..c3 (carol, dan);
    # class 2 rows e0 e1; one test row per class
    ids = ["a0", "a1", "b0", "c0", "c1", "c2", "c3", "e0", "e1", "t0", "t1", "t2"]
    labels = [0, 0, 0, 1, 1, 1, 1, 2, 2, 0, 1, 2]
    split = ["train"] * 9 + ["test"] * 3
    subject = ["alice", "alice", "bob", "carol", "carol", "dan", "dan", "", "", "", "", ""]
    manifest = Manifest(np.asarray(ids, dtype=object), np.asarray(labels),
                        np.asarray(split, dtype=object), np.asarray(subject, dtype=object))
    train = ImageSet(torch.zeros(9, 1, 8, 8, dtype=torch.uint8), torch.tensor(labels[:9]),
                     np.asarray(ids[:9], dtype=object))
    empty = train.where(np.zeros(9, dtype=bool))
    return manifest, DataBundle(train, empty, empty, ("a", "b", "c"), "test")


def test_the_request_that_empties_a_class_is_refused_and_the_rest_stand() -> None:
    manifest, bundle = setup()
    plan = plan_batch({3: ForgetRequest("subject", subject="alice"),
                       4: ForgetRequest("samples", ids=("c0",)),
                       5: ForgetRequest("subject", subject="bob")}, manifest, bundle)
    assert sorted(plan.accepted) == [3, 4]
    # it names the request it collides with (alice's class 0 rows), not the unrelated one
    assert "class(es) [0]" in plan.rejected[5] and "request(s) 3 of" in plan.rejected[5]
    assert plan.selection is not None
    assert sorted(plan.selection.forget_ids.tolist()) == ["a0", "a1", "c0"]
    assert set(plan.train_ids_of) == set(plan.drop_ids_of) == {3, 4}


def test_a_batch_whose_requests_all_stand_is_unchanged() -> None:
    manifest, bundle = setup()
    plan = plan_batch({1: ForgetRequest("subject", subject="alice"),
                       2: ForgetRequest("subject", subject="carol")}, manifest, bundle)
    assert sorted(plan.accepted) == [1, 2] and plan.rejected == {}


def test_class_requests_may_not_leave_fewer_than_two_classes() -> None:
    manifest, bundle = setup()
    plan = plan_batch({1: ForgetRequest("class", label=0), 2: ForgetRequest("class", label=1)},
                      manifest, bundle)
    assert list(plan.accepted) == [1] and "at least two" in plan.rejected[2]
