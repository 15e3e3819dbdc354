"""Hypothesis properties: request validation accepts every well-formed request and refuses a
request exactly when the input gives a reason one can name (unknown kind, a missing or extra
selector, a malformed id or text, an out-of-range number...), with a ValidationError naming the
fields at fault; forget-set extraction is the order-free union of what each request names, and
refuses (ForgetSetError) exactly when a request names something the manifest lacks or the union
is not a sane forget set."""

from __future__ import annotations

import json
import math
import re
from typing import Any

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
# numbers a JSON form may send: any int, or a float (fractional, non-finite or integral)
ANY_FLOAT = st.one_of(st.floats(-5, 1e6), st.sampled_from([math.nan, math.inf, -math.inf]))
TRIGGER = st.fixed_dictionaries({}, optional={
    "pattern": st.sampled_from(["square", "checkerboard", "star"]),
    "size": st.one_of(st.integers(-2, 40), st.booleans(),
                      st.sampled_from(["", "x", "3", "+2", " 4", "-1", "1.5"])),
    "value": st.one_of(ANY_FLOAT, st.integers(-1, 2), st.booleans()),
    "position": st.one_of(st.sampled_from(["bottom-right", "top-left", "middle"]),
                          st.tuples(st.integers(-3, 30), st.integers(-3, 30))),
    "margin": st.one_of(st.integers(-2, 5), st.booleans()),
    "target": st.one_of(st.integers(-1, 20), st.booleans())})
RAW = st.fixed_dictionaries(
    {"kind": st.one_of(st.sampled_from(["samples", "subject", "class", "backdoor"]),
                       st.text(max_size=10), st.integers())},
    optional={"ids": st.one_of(st.lists(ANY_ID, max_size=6), st.text(max_size=5)),
              "subject": st.one_of(st.none(), st.text(max_size=MAX_TEXT + 20)),
              "label": st.one_of(st.none(), st.integers(-5, 10 ** 12), ANY_FLOAT),
              "trigger": st.one_of(st.none(), TRIGGER),
              "idempotency_key": st.one_of(st.none(), st.text(max_size=MAX_TEXT + 20)),
              "model_name": st.one_of(st.none(), st.text(max_size=MAX_TEXT + 20))})

SELECTORS = {"samples": "ids", "subject": "subject", "class": "label", "backdoor": "trigger"}
CORNERS = ("bottom-right", "top-left", "top-right", "bottom-left")


# -- an independent statement of what a well-formed request is ---------------------------------

def _text_ok(value: object) -> bool:
    """1..MAX_TEXT printable characters (no control character, no DEL, no lone surrogate:
    that is no text a client can send)."""
    return isinstance(value, str) and 0 < len(value) <= MAX_TEXT \
        and all(ord(c) >= 32 and ord(c) != 127 and not 0xD800 <= ord(c) <= 0xDFFF
                for c in value)


def _id_ok(value: object) -> bool:
    """`<dataset>:<train|test>:<key>`; the key (which may hold colons) is relative and has no
    `.`, `..` or empty path segment."""
    if not _text_ok(value):
        return False
    parts = str(value).split(":", 2)
    return len(parts) == 3 and parts[0] != "" and parts[1] in ("train", "test") \
        and parts[2] != "" and not parts[2].startswith("/") \
        and all(seg not in ("", ".", "..") for seg in parts[2].split("/"))


def _as_int(value: object) -> int | None:
    """A whole number as a JSON form may send it: an int, an integral float or a decimal
    string; None for anything else (true/false included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]+\s*", value):
        return int(value)
    return None


def _trigger_faults(raw: dict[str, Any]) -> set[str]:
    least = {"size": 1, "margin": 0, "target": 0}
    bad = {key for key, lo in least.items()
           if key in raw and (_as_int(raw[key]) is None or _as_int(raw[key]) < lo)}
    if raw.get("pattern", "square") not in ("square", "checkerboard"):
        bad.add("pattern")
    value = raw.get("value", 1.0)
    if isinstance(value, bool) or not (isinstance(value, int | float) and math.isfinite(value)
                                       and 0 <= value <= 1):
        bad.add("value")
    pos = raw.get("position", "bottom-right")
    if not (pos in CORNERS or (isinstance(pos, tuple) and min(pos) >= 0)):
        bad.add("position")
    return bad


def refusal_reasons(raw: dict[str, Any]) -> dict[str, str]:
    """Why `raw` must be refused, keyed by the field at fault ("" for the request as a whole:
    a selector that is missing or set beside the kind's own). Empty: it must be accepted."""
    why: dict[str, str] = {}
    if raw["kind"] not in SELECTORS:
        why["kind"] = "unknown kind"
    ids = raw.get("ids", [])
    if not isinstance(ids, list) or not all(_id_ok(i) for i in ids):
        why["ids"] = "not a list of well-formed sample ids"
    elif len(set(ids)) < len(ids):
        why["ids"] = "a sample id named twice"
    for field in ("subject", "idempotency_key", "model_name"):
        if raw.get(field) is not None and not _text_ok(raw[field]):
            why[field] = "not 1..MAX_TEXT printable characters"
    label = raw.get("label")
    if label is not None and (_as_int(label) is None or _as_int(label) < 0):
        why["label"] = "not a whole number >= 0"
    if raw.get("trigger") is not None and _trigger_faults(raw["trigger"]):
        why["trigger"] = f"bad trigger {sorted(_trigger_faults(raw['trigger']))}"
    if why or raw["kind"] not in SELECTORS:
        return why  # the request-level checks run once every field is valid
    given = {"ids": bool(ids), "subject": raw.get("subject") is not None,
             "label": label is not None, "trigger": raw.get("trigger") is not None}
    if not given[SELECTORS[raw["kind"]]]:
        why[""] = "the kind's selector is missing"
    elif sum(given.values()) > 1:
        why[""] = "another kind's selector is set"
    elif raw.get("subject") is not None and not raw["subject"].strip():
        why[""] = "blank subject"
    return why


def _check_accepted(raw: dict[str, Any], request: DeletionRequest) -> None:
    """An accepted request keeps what was asked and can be stored and rebuilt."""
    assert request.kind == raw["kind"]
    assert request.ids == sorted(raw.get("ids", []))
    assert all(parse_sample_id(i) for i in request.ids)
    assert request.subject == raw.get("subject")
    assert request.label == (None if raw.get("label") is None else _as_int(raw["label"]))
    assert (request.trigger is None) == (raw.get("trigger") is None)
    if request.trigger is not None:
        assert 0.0 <= request.trigger.value <= 1.0 and math.isfinite(request.trigger.value)
        request.trigger.to_spec()  # the core accepts what validation let through
    for field in ("idempotency_key", "model_name"):
        assert getattr(request, field) == raw.get(field)
    json.dumps(request.payload(), allow_nan=False)  # the ledger can store it
    core = request.to_forget_request()
    assert core.kind == request.kind
    assert forget_request_from(request.kind, request.payload(), request.ids) == core


@settings(max_examples=400, deadline=None)
@given(RAW)
@example({"kind": "class", "label": 3})
@example({"kind": "class", "label": 3.0})
@example({"kind": "class", "label": 3.5})
@example({"kind": "class", "label": 3, "subject": "s"})
@example({"kind": "class"})
@example({"kind": "samples", "ids": ["digits:train:2", "digits:test:1"]})
@example({"kind": "samples", "ids": ["digits:train:2", "digits:train:2"]})
@example({"kind": "samples", "ids": ["digits:train:../x"]})
@example({"kind": "subject", "subject": "subj-00001", "idempotency_key": "k"})
@example({"kind": "subject", "subject": "   "})
@example({"kind": "subject", "subject": "a\x00b"})
@example({"kind": "backdoor", "trigger": {"size": 3, "position": (0, 0)}})
@example({"kind": "backdoor", "trigger": {"size": 0}})
@example({"kind": "deletion", "label": 1})
def test_validation_refuses_exactly_the_malformed_requests(raw: dict) -> None:
    why = refusal_reasons(raw)
    try:
        request = DeletionRequest.model_validate(raw)
    except ValidationError as exc:
        assert why, f"a well-formed request was refused: {exc}"
        blamed = {str(e["loc"][0]) if e["loc"] else "" for e in exc.errors()}
        assert blamed == set(why), (why, exc.errors())  # the error names the fields at fault
        return
    assert not why, f"accepted although {why}"
    _check_accepted(raw, request)


PRINTABLE_TEXT = st.text(st.characters(min_codepoint=32, exclude_characters="\x7f",
                                       exclude_categories=["Cs"]),
                         min_size=1, max_size=MAX_TEXT).filter(str.strip)
GOOD_TRIGGER = st.fixed_dictionaries({}, optional={
    "pattern": st.sampled_from(["square", "checkerboard"]), "size": st.integers(1, 40),
    "value": st.one_of(st.floats(0, 1), st.integers(0, 1)),
    "position": st.one_of(st.sampled_from(CORNERS),
                          st.tuples(st.integers(0, 30), st.integers(0, 30))),
    "margin": st.integers(0, 5), "target": st.integers(0, 20)})
SELECTOR_VALUES = {
    "samples": st.lists(st.one_of(WELL_FORMED, st.builds(
        lambda d, p: f"{d}:train:{p}", st.sampled_from(["digits", "folder"]),
        st.sampled_from(["cat/001.png", "a:b/c.jpg", "x"]))), min_size=1, max_size=8,
        unique=True),
    "subject": PRINTABLE_TEXT, "class": st.integers(0, 10 ** 6), "backdoor": GOOD_TRIGGER}
VALID = st.sampled_from(sorted(SELECTORS)).flatmap(lambda kind: st.fixed_dictionaries(
    {"kind": st.just(kind), SELECTORS[kind]: SELECTOR_VALUES[kind]},
    optional={"idempotency_key": PRINTABLE_TEXT, "model_name": PRINTABLE_TEXT}))


@settings(max_examples=200, deadline=None)
@given(VALID)
def test_every_well_formed_request_is_accepted(raw: dict) -> None:
    assert refusal_reasons(raw) == {}  # the oracle agrees these are well formed
    _check_accepted(raw, DeletionRequest.model_validate(raw))


# -- extraction ---------------------------------------------------------------------------------

def _requests(manifest: Manifest) -> st.SearchStrategy[list[ForgetRequest]]:
    """Requests over the manifest, with unknown ids, subjects and classes mixed in, and samples
    requests that name only untrained rows, a whole class's training rows or the whole
    training split (so the union is regularly empty, empties a class, or takes everything)."""
    ids = manifest.ids.tolist()
    train = manifest.split == "train"
    subjects = sorted(set(manifest.subject.tolist()))
    whole = [tuple(manifest.ids[train & (manifest.labels == k)].tolist())
             for k in np.unique(manifest.labels[train])]
    one = st.one_of(
        st.builds(lambda xs: ForgetRequest("samples", ids=tuple(xs)),
                  st.lists(st.one_of(st.sampled_from(ids), st.just("digits:train:999999")),
                           min_size=1, max_size=25)),
        st.builds(lambda xs: ForgetRequest("samples", ids=tuple(xs)),
                  st.lists(st.sampled_from(manifest.ids[~train].tolist()), min_size=1,
                           max_size=5)),
        st.builds(lambda xs: ForgetRequest("samples", ids=xs), st.sampled_from(whole)),
        st.just(ForgetRequest("samples", ids=tuple(manifest.ids[train].tolist()))),
        st.builds(lambda s: ForgetRequest("subject", subject=s),
                  st.one_of(st.sampled_from(subjects), st.just("nobody"))),
        st.builds(lambda k: ForgetRequest("class", label=k), st.integers(0, 11)))
    return st.lists(one, min_size=1, max_size=4)


def expected_refusal(requests: list[ForgetRequest], m: Manifest, num_classes: int
                     ) -> tuple[str | None, set[str]]:
    """(the refusal extraction must give, or None; the ids the requests name), from sets: the
    first request naming what the manifest lacks, else the first union check that fails."""
    known, named = set(m.ids.tolist()), set()
    for r in requests:
        if r.kind == "samples" and not set(r.ids) <= known:
            return "unknown sample id", named
        if r.kind == "subject" and r.subject not in set(m.subject.tolist()):
            return "unknown subject", named
        if r.kind == "class" and not 0 <= r.label < num_classes:
            return "outside the label space", named
        if r.kind == "samples":
            named |= set(r.ids)
        elif r.kind == "subject":
            named |= set(m.ids[m.subject == r.subject].tolist())
        else:
            named |= set(m.ids[(m.labels == r.label) & (m.split != "test")].tolist())
    train = dict(zip(m.ids[m.split == "train"].tolist(), m.labels[m.split == "train"].tolist(),
                     strict=True))
    forget = named & set(train)
    if not forget:
        return "forget set is empty", named
    if forget == set(train):
        return "entire training set", named
    kept = {train[i] for i in set(train) - forget}
    if set(train.values()) - kept - {r.label for r in requests if r.kind == "class"}:
        return "with no training samples", named
    return None, named


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
    refusal, named = expected_refusal(requests, m, 10)
    if refusal is not None:
        with pytest.raises(ForgetSetError, match=refusal):
            extract(requests, m, None, 10)
        return
    sel = extract(requests, m, None, 10)  # no reason to refuse: must be accepted
    train = m.split == "train"
    forget, drop = set(sel.forget_ids.tolist()), set(sel.drop_ids.tolist())
    assert list(sel.forget_ids) == sorted(forget) and len(forget) == len(sel.forget_ids)
    assert forget == drop & set(m.ids[train].tolist()) and forget
    assert drop == named  # exactly what the requests name, nothing more
    assert len(forget) < int(train.sum())  # never the whole training split
    kept_labels = set(m.labels[train & ~np.isin(m.ids, sel.forget_ids)].tolist())
    asked = {r.label for r in requests if r.kind == "class"}
    assert set(m.labels[train].tolist()) - asked <= kept_labels  # no class silently emptied
    again = extract(list(reversed(requests)), m, None, 10)  # order does not matter
    assert np.array_equal(again.forget_ids, sel.forget_ids)
    assert np.array_equal(again.drop_ids, sel.drop_ids)
