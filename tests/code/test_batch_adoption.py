"""Rows a re-scan dropped (their files were deleted) that the parent model still holds: a
request naming only those rows, by id or by subject, is adopted by the batch instead of
being refused as naming rows never in the data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from test_batch_union import setup as three_class_batch

from forgetflow.core.forget import ForgetRequest
from forgetflow.pipeline.batch import adopt_rescanned, plan_batch


def test_the_rows_a_rescan_dropped_are_the_parents_training_rows_the_new_version_lacks() -> None:
    parent, _ = three_class_batch()
    later = parent.without({"a0", "a1", "c0", "t0"})
    gone = parent.train_rows_missing_from(later, excluded=frozenset({"c0"}))
    assert gone.ids.tolist() == ["a0", "a1"]  # c0 a request excluded; t0 is a test row
    assert gone.subject.tolist() == ["alice", "alice"]


def test_sample_and_subject_requests_for_dropped_rows_are_adopted() -> None:
    parent, bundle = three_class_batch()
    gone = parent.train_rows_missing_from(parent.without({"a0", "a1", "c0"}))
    manifest = parent.without(set(gone.ids.tolist()))
    train = np.isin(bundle.train.ids, manifest.ids)
    bundle = replace(bundle, train=bundle.train.where(train))
    requests = {1: ForgetRequest("subject", subject="alice"),
                2: ForgetRequest("samples", ids=("c0",)),
                3: ForgetRequest("subject", subject="dan"),
                4: ForgetRequest("subject", subject="zed")}
    plan = plan_batch(requests, manifest, bundle, frozenset(gone.ids.tolist()),
                      frozenset(map(str, gone.subject.tolist())))
    assert sorted(plan.already_removed) == [1, 2] and "unknown subject" in plan.rejected[4]
    assert adopt_rescanned(plan, requests, gone) == [1, 2]
    assert sorted(plan.accepted) == [1, 2, 3] and plan.already_removed == {}
    assert plan.drop_ids_of[1] == {"a0", "a1"} and plan.drop_ids_of[2] == {"c0"}
    assert plan.selection is not None
    assert set(plan.selection.forget_ids.tolist()) == {"a0", "a1", "c0", "c2", "c3"}
    assert plan.request_of()["a1"] == "1" and plan.request_of()["c0"] == "2"


def test_a_subject_whose_rows_went_before_the_parent_stays_already_removed() -> None:
    parent, bundle = three_class_batch()
    gone = parent.train_rows_missing_from(parent)  # nothing dropped since the parent
    requests = {1: ForgetRequest("subject", subject="alice")}
    plan = plan_batch(requests, parent.without({"a0", "a1"}), bundle, frozenset({"a0", "a1"}),
                      frozenset({"alice"}))
    assert adopt_rescanned(plan, requests, gone) == [] and list(plan.already_removed) == [1]
