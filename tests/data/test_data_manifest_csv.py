"""Data tier: manifests as files (the DVC-tracked form of a data version)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from forgetflow.core.data.manifest import COLUMNS, Manifest, ManifestError
from forgetflow.core.data.tensors import materialize


def _assert_same(a: Manifest, b: Manifest) -> None:
    for col in ("ids", "labels", "split", "subject"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))


def test_csv_round_trip_keeps_rows_types_and_digest(tmp_path, tiny_fmnist_manifest):
    path = tmp_path / "manifest.csv"
    tiny_fmnist_manifest.write_csv(path)
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    back = Manifest.read_csv(path)
    _assert_same(back, tiny_fmnist_manifest)
    assert back.labels.dtype == np.int64
    assert back.digest() == tiny_fmnist_manifest.digest()
    # str paths and open file objects work too
    _assert_same(Manifest.read_csv(str(path)), tiny_fmnist_manifest)
    with open(path, newline="") as fh:
        _assert_same(Manifest.read_csv(fh), tiny_fmnist_manifest)


def test_round_tripped_manifest_materializes_identically(
    tmp_path, tiny_fmnist_raw, tiny_fmnist_manifest, tiny_fmnist_bundle
):
    path = tmp_path / "m.csv"
    tiny_fmnist_manifest.write_csv(path)
    bundle = materialize(tiny_fmnist_raw, Manifest.read_csv(path))
    for split in ("train", "third_party", "test"):
        a, b = getattr(bundle, split), getattr(tiny_fmnist_bundle, split)
        np.testing.assert_array_equal(a.ids, b.ids)
        assert bool((a.images == b.images).all()) and bool((a.labels == b.labels).all())


def test_without_drops_exactly_the_named_ids_and_changes_digest(tmp_path, digits_manifest):
    gone = set(digits_manifest.ids[[0, 5, 1500]].tolist())
    smaller = digits_manifest.without(gone)
    assert len(smaller) == len(digits_manifest) - 3
    assert not gone & set(smaller.ids.tolist())
    assert smaller.digest() != digits_manifest.digest()
    assert digits_manifest.without(set()).digest() == digits_manifest.digest()
    smaller.write_csv(tmp_path / "s.csv")
    assert Manifest.read_csv(tmp_path / "s.csv").digest() == smaller.digest()


def test_empty_manifest_round_trips(tmp_path, digits_manifest):
    empty = digits_manifest.select(np.zeros(len(digits_manifest), dtype=bool))
    empty.write_csv(tmp_path / "e.csv")
    back = Manifest.read_csv(tmp_path / "e.csv")
    assert len(back) == 0 and back.digest() == empty.digest()


def test_read_csv_rejects_wrong_header():
    with pytest.raises(ManifestError, match="header"):
        Manifest.read_csv(io.StringIO("id,label,split\nx:train:0,1,train\n"))
    with pytest.raises(ManifestError, match="header"):
        Manifest.read_csv(io.StringIO(""))


def test_of_split_rejects_unknown_split(digits_manifest):
    with pytest.raises(ManifestError, match="unknown split"):
        digits_manifest.of_split("validation")
