"""Code tier: turning deletion requests into forget sets (docs/design.md §5)."""

from __future__ import annotations

import numpy as np
import pytest

from forgetflow.core.data.manifest import Manifest
from forgetflow.core.forget import ForgetRequest, ForgetSetError, extract, precision_recall, select
from forgetflow.core.triggers import TriggerSpec, poison


def ids_of(m: Manifest, split: str) -> np.ndarray:
    return m.ids[m.split == split]


def test_samples_request_forgets_train_ids_and_drops_all_named(digits_manifest):
    m = digits_manifest
    train = ids_of(m, "train")
    third, test = ids_of(m, "third_party"), ids_of(m, "test")
    named = [train[3], train[10], third[0], test[1], train[3]]  # duplicate on purpose
    sel = extract([ForgetRequest("samples", ids=tuple(named))], m)
    assert sel.forget_ids.tolist() == sorted([train[3], train[10]])
    assert sel.drop_ids.tolist() == sorted({train[3], train[10], third[0], test[1]})
    assert sel.per_request == [2]


def test_unknown_sample_ids_are_rejected_and_named(digits_manifest):
    train = ids_of(digits_manifest, "train")
    req = ForgetRequest("samples", ids=(train[0], "digits:train:999999", "nope"))
    with pytest.raises(ForgetSetError, match="2 unknown sample id"):
        extract([req], digits_manifest)


def test_subject_request_takes_every_row_of_that_subject(digits_manifest):
    m = digits_manifest
    subj = m.subject[np.flatnonzero(m.split == "train")[0]]
    sel = extract([ForgetRequest("subject", subject=str(subj))], m)
    rows = m.subject == subj
    assert sel.drop_ids.tolist() == sorted(m.ids[rows].tolist())
    assert sel.forget_ids.tolist() == sorted(m.ids[rows & (m.split == "train")].tolist())
    assert 0 < len(sel.forget_ids) <= 20


def test_unknown_subject_is_rejected(digits_manifest):
    with pytest.raises(ForgetSetError, match="unknown subject"):
        extract([ForgetRequest("subject", subject="subj-99999")], digits_manifest)


def test_class_request_takes_the_class_in_train_and_third_party(digits_manifest):
    m = digits_manifest
    sel = extract([ForgetRequest("class", label=4)], m, num_classes=10)
    in_class = m.labels == 4
    assert sel.forget_ids.tolist() == sorted(m.ids[in_class & (m.split == "train")].tolist())
    assert sel.drop_ids.tolist() == sorted(m.ids[in_class & (m.split != "test")].tolist())
    assert not set(sel.drop_ids.tolist()) & set(ids_of(m, "test").tolist())


@pytest.mark.parametrize("label", [10, -1, 42])
def test_class_outside_label_space_is_rejected(digits_manifest, label):
    with pytest.raises(ForgetSetError, match="outside the label space"):
        extract([ForgetRequest("class", label=label)], digits_manifest, num_classes=10)
    with pytest.raises(ForgetSetError, match="outside the label space"):
        extract([ForgetRequest("class", label=label)], digits_manifest)  # inferred from labels


def test_empty_forget_set_is_rejected(digits_manifest):
    test_only = tuple(ids_of(digits_manifest, "test")[:3])
    with pytest.raises(ForgetSetError, match="empty"):
        extract([ForgetRequest("samples", ids=test_only)], digits_manifest)
    with pytest.raises(ForgetSetError, match="no requests"):
        extract([], digits_manifest)


def test_forgetting_the_whole_training_set_is_rejected(digits_manifest):
    everything = tuple(ids_of(digits_manifest, "train"))
    with pytest.raises(ForgetSetError, match="entire training set"):
        extract([ForgetRequest("samples", ids=everything)], digits_manifest)
    every_class = [ForgetRequest("class", label=k) for k in range(10)]
    with pytest.raises(ForgetSetError, match="entire training set"):
        extract(every_class, digits_manifest, num_classes=10)


def test_emptying_a_class_via_a_non_class_request_is_rejected(digits_manifest):
    m = digits_manifest
    all_sevens = tuple(m.ids[(m.labels == 7) & (m.split == "train")])
    with pytest.raises(ForgetSetError, match=r"class\(es\) \[7\]"):
        extract([ForgetRequest("samples", ids=all_sevens)], m)
    # the same set is fine when it is stated as a class request ...
    sel = extract([ForgetRequest("class", label=7)], m, num_classes=10)
    assert set(all_sevens) == set(sel.forget_ids.tolist())
    # ... or when a class request for that class is part of the batch
    both = extract([ForgetRequest("samples", ids=all_sevens), ForgetRequest("class", label=7)],
                   m, num_classes=10)
    assert set(both.forget_ids.tolist()) == set(all_sevens)
    # leaving a single sample of the class keeps it alive
    extract([ForgetRequest("samples", ids=all_sevens[1:])], m)


def test_union_of_several_requests(digits_manifest):
    m = digits_manifest
    train_rows = np.flatnonzero(m.split == "train")
    subj = str(m.subject[train_rows[0]])
    samples = tuple(m.ids[train_rows[[5, 6, 7]]])
    reqs = [
        ForgetRequest("samples", ids=samples),
        ForgetRequest("subject", subject=subj),
        ForgetRequest("class", label=2),
    ]
    sel = extract(reqs, m, num_classes=10)
    masks = [select(r, m, num_classes=10) for r in reqs]
    union = np.logical_or.reduce(masks)
    assert sel.drop_ids.tolist() == sorted(m.ids[union].tolist())
    assert sel.forget_ids.tolist() == sorted(m.ids[union & (m.split == "train")].tolist())
    assert sel.per_request == [int((mk & (m.split == "train")).sum()) for mk in masks]
    assert len(sel.forget_ids) <= sum(sel.per_request)  # overlaps are counted once
    assert len(set(sel.forget_ids.tolist())) == len(sel.forget_ids)


def test_request_needs_its_selector():
    with pytest.raises(ForgetSetError, match="unknown request kind"):
        ForgetRequest("everything")
    for kind in ("samples", "subject", "class", "backdoor"):
        with pytest.raises(ForgetSetError, match="needs its selector"):
            ForgetRequest(kind)
    ForgetRequest("class", label=0)  # label 0 is a real selector


def test_backdoor_request_finds_exactly_the_poisoned_samples(tiny_fmnist_bundle,
                                                             tiny_fmnist_manifest):
    spec = TriggerSpec(pattern="checkerboard", size=3, position="bottom-right", target=0)
    poisoned, truth = poison(tiny_fmnist_bundle.train, spec, rate=0.05, seed=0)
    sel = extract([ForgetRequest("backdoor", trigger=spec)], tiny_fmnist_manifest,
                  train_images=poisoned.images, num_classes=10)
    assert precision_recall(sel.forget_ids, truth) == (1.0, 1.0)
    assert sel.forget_ids.tolist() == sorted(truth.tolist())
    # a different trigger finds nothing
    other = TriggerSpec(pattern="square", size=3, position="top-left", target=0)
    with pytest.raises(ForgetSetError, match="empty"):
        extract([ForgetRequest("backdoor", trigger=other)], tiny_fmnist_manifest,
                train_images=poisoned.images, num_classes=10)


def test_backdoor_request_with_the_wrong_target_or_a_pattern_of_clean_images_is_refused(
        tiny_fmnist_bundle, tiny_fmnist_manifest):
    """With the labels trained on, the rows carrying the trigger must mostly bear its target:
    a wrong target would make the attack-success check measure the wrong class."""
    spec = TriggerSpec(pattern="checkerboard", size=3, position="bottom-right", target=4)
    poisoned, truth = poison(tiny_fmnist_bundle.train, spec, rate=0.05, seed=0)
    right = extract([ForgetRequest("backdoor", trigger=spec)], tiny_fmnist_manifest,
                    train_images=poisoned.images, num_classes=10, train_labels=poisoned.labels)
    assert sorted(right.forget_ids.tolist()) == sorted(truth.tolist())
    wrong = TriggerSpec(pattern="checkerboard", size=3, position="bottom-right", target=1)
    with pytest.raises(ForgetSetError, match="labelled with its target 1 .most: 4, 100%"):
        extract([ForgetRequest("backdoor", trigger=wrong)], tiny_fmnist_manifest,
                train_images=poisoned.images, num_classes=10, train_labels=poisoned.labels)
    # a black square in a corner matches clean images of every class
    dark = TriggerSpec(pattern="square", size=2, position="top-left", value=0.0, target=0)
    with pytest.raises(ForgetSetError, match="matches clean images"):
        extract([ForgetRequest("backdoor", trigger=dark)], tiny_fmnist_manifest,
                train_images=tiny_fmnist_bundle.train.images, num_classes=10,
                train_labels=tiny_fmnist_bundle.train.labels)


def test_backdoor_request_input_checks(tiny_fmnist_bundle, tiny_fmnist_manifest):
    spec = TriggerSpec(target=0)
    req = ForgetRequest("backdoor", trigger=spec)
    with pytest.raises(ForgetSetError, match="needs the training images"):
        extract([req], tiny_fmnist_manifest)
    with pytest.raises(ForgetSetError, match="do not match"):
        extract([req], tiny_fmnist_manifest, train_images=tiny_fmnist_bundle.train.images[:10])
    with pytest.raises(ValueError, match="target"):
        extract([ForgetRequest("backdoor", trigger=TriggerSpec(target=12))],
                tiny_fmnist_manifest, train_images=tiny_fmnist_bundle.train.images,
                num_classes=10)
    with pytest.raises(ValueError, match="outside"):
        extract([ForgetRequest("backdoor", trigger=TriggerSpec(size=40))],
                tiny_fmnist_manifest, train_images=tiny_fmnist_bundle.train.images,
                num_classes=10)


def test_precision_recall():
    found = np.asarray(["a", "b", "c", "d"], dtype=object)
    truth = np.asarray(["a", "b", "e"], dtype=object)
    p, r = precision_recall(found, truth)
    assert p == pytest.approx(0.5) and r == pytest.approx(2 / 3)
    assert precision_recall(np.asarray([]), truth) == (0.0, 0.0)


def test_extract_works_on_a_manifest_read_back_from_csv(tmp_path, digits_manifest):
    digits_manifest.write_csv(tmp_path / "m.csv")
    back = Manifest.read_csv(tmp_path / "m.csv")
    a = extract([ForgetRequest("class", label=3)], digits_manifest, num_classes=10)
    b = extract([ForgetRequest("class", label=3)], back, num_classes=10)
    assert a.forget_ids.tolist() == b.forget_ids.tolist()
    assert a.per_request == b.per_request
