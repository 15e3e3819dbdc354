"""Data tier: the split/subject/id contracts of docs/design.md §3 on real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forgetflow.core.data.manifest import (
    Manifest,
    ManifestError,
    build_manifest,
    parse_sample_id,
    positions,
    sample_id,
)
from forgetflow.core.data.tensors import materialize, to_float


@pytest.fixture(scope="module")
def fmnist_manifest(fmnist_raw):
    return build_manifest(fmnist_raw, seed=0)


def test_splits_are_disjoint_and_cover_every_source_row(fmnist_raw, fmnist_manifest):
    m = fmnist_manifest
    n_train, n_test = len(fmnist_raw.train.labels), len(fmnist_raw.test.labels)
    assert (n_train, n_test) == (60000, 10000)
    assert len(m) == n_train + n_test
    assert len(set(m.ids.tolist())) == len(m), "ids must be unique"
    assert set(m.split.tolist()) == {"train", "third_party", "holdout", "test"}
    parts = [set(m.of_split(s).ids.tolist()) for s in ("train", "third_party", "holdout",
                                                        "test")]
    assert sum(len(p) for p in parts) == len(m)
    assert set().union(*parts) == set(m.ids.tolist())
    # the source train file feeds train + third_party, the test file feeds test only
    is_test, _ = positions(m)
    assert (m.split[is_test] == "test").all()
    assert (m.split[~is_test] != "test").all()


def test_ids_follow_contract_and_file_positions(fmnist_raw, fmnist_manifest):
    m = fmnist_manifest
    assert m.ids[0] == "fashion-mnist:train:0"
    assert m.ids[41231] == "fashion-mnist:train:41231"
    assert m.ids[60000 + 7] == "fashion-mnist:test:7"
    assert m.ids[-1] == "fashion-mnist:test:9999"
    is_test, pos = positions(m)
    np.testing.assert_array_equal(pos[~is_test], np.arange(60000))
    np.testing.assert_array_equal(pos[is_test], np.arange(10000))
    # labels in the manifest are the source file's labels at that position
    np.testing.assert_array_equal(m.labels[~is_test], fmnist_raw.train.labels)
    np.testing.assert_array_equal(m.labels[is_test], fmnist_raw.test.labels)


def test_ids_do_not_depend_on_seed_or_fraction(fmnist_raw, fmnist_manifest):
    other = build_manifest(fmnist_raw, seed=5, third_party_fraction=0.3, subject_size=7)
    np.testing.assert_array_equal(other.ids, fmnist_manifest.ids)
    np.testing.assert_array_equal(other.labels, fmnist_manifest.labels)


def test_materialized_pixels_equal_raw_file_rows(fmnist_raw, fmnist_manifest):
    # a filtered manifest (as after deletions) with rows from every split, incl. far positions
    rng = np.random.default_rng(1)
    keep = np.zeros(len(fmnist_manifest), dtype=bool)
    keep[rng.choice(len(keep), 3000, replace=False)] = True
    keep[[41231, 60000 + 7]] = True
    sub = fmnist_manifest.select(keep)
    bundle = materialize(fmnist_raw, sub)
    assert bundle.source == "fashion-mnist"
    assert bundle.image_shape == (1, 28, 28)
    assert bundle.num_classes == 10
    total = 0
    for split in ("train", "third_party", "holdout", "test"):
        s = getattr(bundle, split)
        assert s.images.dtype == torch.uint8
        assert set(s.ids.tolist()) == set(sub.of_split(split).ids.tolist())
        for k, sid in enumerate(s.ids):
            _, file_split, key = parse_sample_id(sid)
            i = int(key)
            raw = fmnist_raw.train if file_split == "train" else fmnist_raw.test
            np.testing.assert_array_equal(s.images[k].numpy(), raw.images[i])
            assert int(s.labels[k]) == int(raw.labels[i])
        total += len(s)
    assert total == int(keep.sum())
    assert "fashion-mnist:train:41231" in set(bundle.train.ids) | set(bundle.third_party.ids)
    assert "fashion-mnist:test:7" in set(bundle.test.ids)


def test_raw_images_look_like_fashion_mnist(fmnist_raw):
    # guards the IDX reader's reshape: a wrong stride would scramble rows into noise
    imgs = fmnist_raw.train.images
    assert imgs.shape == (60000, 1, 28, 28) and imgs.dtype == np.uint8
    assert np.bincount(fmnist_raw.train.labels, minlength=10).tolist() == [6000] * 10
    # items are centred: the border is mostly background, the centre mostly not
    border = np.concatenate([imgs[:1000, 0, 0, :], imgs[:1000, 0, -1, :]]).mean()
    centre = imgs[:1000, 0, 10:18, 10:18].mean()
    assert centre > 4 * border


def test_same_seed_same_digest_different_seed_different(fmnist_raw, fmnist_manifest):
    again = build_manifest(fmnist_raw, seed=0)
    assert again.digest() == fmnist_manifest.digest()
    np.testing.assert_array_equal(again.split, fmnist_manifest.split)
    np.testing.assert_array_equal(again.subject, fmnist_manifest.subject)
    other = build_manifest(fmnist_raw, seed=1)
    assert other.digest() != fmnist_manifest.digest()
    assert (other.split != fmnist_manifest.split).any()
    assert (other.subject != fmnist_manifest.subject).any()


@pytest.mark.parametrize("fraction", [0.1, 0.25])
def test_third_party_fraction_as_requested(fmnist_raw, fraction):
    m = build_manifest(fmnist_raw, seed=3, third_party_fraction=fraction)
    pool = np.isin(m.split, ["third_party", "holdout"])
    n_third = int(pool.sum())
    assert n_third == round(60000 * fraction)
    # the pool is a random draw: every class is represented roughly in proportion
    per_class = np.bincount(m.labels[pool], minlength=10) / n_third
    assert np.allclose(per_class, 0.1, atol=0.03)
    # half of it (default holdout_fraction) is held out for evaluation only
    assert int((m.split == "holdout").sum()) == round(n_third * 0.5)


def test_holdout_split_leaves_train_rows_and_subjects_unchanged(fmnist_raw):
    """Adding the holdout split must not move any training row: models trained on a
    manifest without it (holdout_fraction=0) stay valid, and only third-party rows change."""
    without = build_manifest(fmnist_raw, seed=4, holdout_fraction=0.0)
    split = build_manifest(fmnist_raw, seed=4, holdout_fraction=0.3)
    assert "holdout" not in set(without.split.tolist())
    np.testing.assert_array_equal(without.split == "train", split.split == "train")
    np.testing.assert_array_equal(without.subject, split.subject)
    held = split.split == "holdout"
    assert (without.split[held] == "third_party").all()
    assert held.sum() == round((without.split == "third_party").sum() * 0.3)
    again = build_manifest(fmnist_raw, seed=4, holdout_fraction=0.3)
    np.testing.assert_array_equal(again.split, split.split)  # seeded
    with pytest.raises(ManifestError, match="holdout_fraction"):
        build_manifest(fmnist_raw, seed=4, holdout_fraction=1.0)


@pytest.mark.parametrize("subject_size", [20, 7])
def test_subjects_hold_about_subject_size_samples(digits_raw, subject_size):
    m = build_manifest(digits_raw, seed=0, subject_size=subject_size)
    _, counts = np.unique(m.subject, return_counts=True)
    assert len(counts) == -(-len(m) // subject_size)
    assert (counts <= subject_size).all()
    assert (counts == subject_size).sum() >= len(counts) - 1
    assert counts.sum() == len(m)
    # subjects are spread at random, not contiguous blocks of ids
    first = m.subject == m.subject[0]
    _, pos = positions(m.select(first))
    assert pos.max() - pos.min() > subject_size


def test_digits_bundle_is_consistent(digits_bundle, digits_raw, digits_manifest):
    assert digits_bundle.image_shape == (1, 16, 16)
    for split in ("train", "third_party", "test"):
        s = getattr(digits_bundle, split)
        assert len(s) == int((digits_manifest.split == split).sum())
        assert len(s.ids) == len(s.labels) == s.images.shape[0]
        assert all(str(i).startswith("digits:") for i in s.ids)
    x = to_float(digits_bundle.train.images[:5])
    assert x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_tiny_fmnist_bundle_is_a_real_slice(tiny_fmnist_bundle, fmnist_raw):
    b = tiny_fmnist_bundle
    assert 2000 <= len(b.train) + len(b.third_party) + len(b.test) <= 10000
    assert b.image_shape == (1, 28, 28)
    k = len(b.test) // 2
    _, _, i = parse_sample_id(b.test.ids[k])
    np.testing.assert_array_equal(b.test.images[k].numpy(), fmnist_raw.test.images[int(i)])


def test_build_manifest_rejects_bad_knobs(digits_raw):
    for fraction in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ManifestError):
            build_manifest(digits_raw, third_party_fraction=fraction)
    with pytest.raises(ManifestError):
        build_manifest(digits_raw, subject_size=0)


def test_sample_id_round_trip_and_rejects_malformed():
    assert sample_id("fashion-mnist", "train", 41231) == "fashion-mnist:train:41231"
    assert parse_sample_id("fashion-mnist:test:7") == ("fashion-mnist", "test", "7")
    # image-folder keys are paths: colons, commas and spaces stay in the key
    assert parse_sample_id("faces:train:cat/a:b, c.png") == ("faces", "train", "cat/a:b, c.png")
    for bad in ("fashion-mnist:val:1", "train:1", "", "a:train:", ":train:1", "a:b:train:3",
                "a:train:../x", "a:train:/etc/passwd", "a:train:cat//x", "a:train:./x"):
        with pytest.raises(ManifestError):
            parse_sample_id(bad)


def test_position_sources_refuse_keys_that_are_not_positions(digits_raw):
    m = build_manifest(digits_raw)
    broken = Manifest(np.asarray(["digits:train:x"], dtype=object), m.labels[:1], m.split[:1],
                      m.subject[:1])
    with pytest.raises(ManifestError, match="positions"):
        materialize(digits_raw, broken)


def test_materialize_rejects_manifest_of_another_source(digits_raw, tiny_fmnist_manifest):
    with pytest.raises(ManifestError, match="not from source"):
        materialize(digits_raw, tiny_fmnist_manifest)
