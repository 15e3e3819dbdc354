"""Hypothesis properties: request validation never lets a malformed request through (and never
fails with anything but a ValidationError), and forget-set extraction is a sane, order-free
union of what each request names (or a ForgetSetError)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from forgetflow.core.data.manifest import Manifest, parse_sample_id
from forgetflow.core.forget import ForgetRequest, ForgetSetError, extract
from forgetflow.core.requests import MAX_TEXT, DeletionRequest, forget_request_from

WELL_FORMED = st.builds(lambda d, s, i: f"{d}:{s}:{i}", st.sampled_from(["digits", "fmnist"]),
                        st.sampled_from(["train", "test"]), st.integers(0, 5000))
ANY_ID = st.one_of(WELL_FORMED, st.text(max_size=30), st.just("digits:train:../x"),
                   st.just("digits:train:1'; DROP TABLE requests;--"))
TRIGGER = st.fixed_dictionaries({}, optional={
    "pattern": st.sampled_from(["square", "checkerboard", "star"]),
    "size": st.one_of(st.integers(-2, 40), st.text(max_size=3)),
    "value": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-1, 2)),
    "position": st.one_of(st.sampled_from(["bottom-right", "top-left", "middle"]),
                          st.tuples(st.integers(-3, 30), st.integers(-3, 30))),
    "margin": st.integers(-2, 5), "target": st.integers(-1, 20)})
RAW = st.fixed_dictionaries(
    {"kind": st.one_of(st.sampled_from(["samples", "subject", "class", "backdoor"]),
                       st.text(max_size=10), st.integers())},
    optional={"ids": st.one_of(st.lists(ANY_ID, max_size=6), st.text(max_size=5)),
              "subject": st.one_of(st.none(), st.text(max_size=MAX_TEXT + 20)),
              "label": st.one_of(st.none(), st.integers(-5, 10 ** 12),
                                 st.floats(allow_nan=True, allow_infinity=True)),
              "trigger": st.one_of(st.none(), TRIGGER),
              "idempotency_key": st.one_of(st.none(), st.text(max_size=MAX_TEXT + 20)),
              "model_name": st.one_of(st.none(), st.text(max_size=12))})


@settings(max_examples=400, deadline=None)
@given(RAW)
@example({"kind": "class", "label": 3})
@example({"kind": "samples", "ids": ["digits:train:2", "digits:test:1"]})
@example({"kind": "subject", "subject": "subj-00001", "idempotency_key": "k"})
@example({"kind": "backdoor", "trigger": {"size": 3, "position": [0, 0]}})
def test_validation_accepts_only_well_formed_requests(raw: dict) -> None:
    try:
        request = DeletionRequest.model_validate(raw)
    except ValidationError:
        return  # refused with a field-naming error: fine
    selectors = {"ids": bool(request.ids), "subject": request.subject is not None,
                 "label": request.label is not None, "trigger": request.trigger is not None}
    wanted = {"samples": "ids", "subject": "subject", "class": "label", "backdoor": "trigger"}
    assert [k for k, v in selectors.items() if v] == [wanted[request.kind]]
    assert request.ids == sorted(set(request.ids))
    assert all(parse_sample_id(i) for i in request.ids)
    for text in (request.subject, request.idempotency_key, request.model_name):
        assert text is None or (0 < len(text) <= MAX_TEXT
                                and not any(ord(c) < 32 or ord(c) == 127 for c in text))
    assert request.subject is None or request.subject.strip()
    assert request.label is None or request.label >= 0
    if request.trigger is not None:
        assert 0.0 <= request.trigger.value <= 1.0 and math.isfinite(request.trigger.value)
    json.dumps(request.payload(), allow_nan=False)  # the ledger can store it
    core = request.to_forget_request()
    assert forget_request_from(request.kind, request.payload(), request.ids) == core


def _requests(manifest: Manifest) -> st.SearchStrategy[list[ForgetRequest]]:
    ids = manifest.ids.tolist()
    subjects = sorted(set(manifest.subject.tolist()))
    one = st.one_of(
        st.builds(lambda xs: ForgetRequest("samples", ids=tuple(xs)),
                  st.lists(st.one_of(st.sampled_from(ids), st.just("digits:train:999999")),
                           min_size=1, max_size=25)),
        st.builds(lambda s: ForgetRequest("subject", subject=s),
                  st.one_of(st.sampled_from(subjects), st.just("nobody"))),
        st.builds(lambda k: ForgetRequest("class", label=k), st.integers(0, 11)))
    return st.lists(one, min_size=1, max_size=4)


@pytest.fixture(scope="module")
def small_manifest(digits_manifest: Manifest) -> Manifest:
    """Every 6th row of the digits manifest (~300 rows): small enough that random requests
    regularly empty a class or the whole training split."""
    return digits_manifest.select(np.arange(len(digits_manifest)) % 6 == 0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.data_too_large])
@given(data=st.data())
def test_extraction_is_the_checked_union_of_each_request(small_manifest: Manifest,
                                                         data: st.DataObject) -> None:
    m = small_manifest
    requests = data.draw(_requests(m))
    try:
        sel = extract(requests, m, None, 10)
    except ForgetSetError:
        return
    train = m.split == "train"
    forget, drop = set(sel.forget_ids.tolist()), set(sel.drop_ids.tolist())
    assert list(sel.forget_ids) == sorted(forget) and len(forget) == len(sel.forget_ids)
    assert forget == drop & set(m.ids[train].tolist()) and forget
    named: set[str] = set()
    for r in requests:
        if r.kind == "samples":
            named |= set(r.ids)
        elif r.kind == "subject":
            named |= set(m.ids[m.subject == r.subject].tolist())
        else:
            named |= set(m.ids[(m.labels == r.label) & (m.split != "test")].tolist())
    assert drop == named  # exactly what the requests name, nothing more
    assert len(forget) < int(train.sum())  # never the whole training split
    kept_labels = set(m.labels[train & ~np.isin(m.ids, sel.forget_ids)].tolist())
    asked = {r.label for r in requests if r.kind == "class"}
    assert set(m.labels[train].tolist()) - asked <= kept_labels  # no class silently emptied
    again = extract(list(reversed(requests)), m, None, 10)  # order does not matter
    assert np.array_equal(again.forget_ids, sel.forget_ids)
    assert np.array_equal(again.drop_ids, sel.drop_ids)
