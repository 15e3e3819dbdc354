"""Data tier: source readers (IDX, image folders) and their error messages."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from forgetflow.core.data.manifest import build_manifest, parse_sample_id
from forgetflow.core.data.sources import DataSourceError, load_idx_dir, load_source, read_idx
from forgetflow.core.data.tensors import materialize


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_pair(root: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (root / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))  # plain, not gz


@pytest.fixture
def small_images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(6, 5, 4), dtype=np.uint8)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, small_images, gz):
    data = idx_bytes(small_images)
    path = tmp_path / ("x.gz" if gz else "x")
    path.write_bytes(gzip.compress(data) if gz else data)
    np.testing.assert_array_equal(read_idx(path), small_images)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda b: b[:-1], id="body-short-by-one"),
        pytest.param(lambda b: b[: len(b) // 2], id="body-truncated"),
        pytest.param(lambda b: b + b"\x00", id="trailing-byte"),
        pytest.param(lambda b: b[:6], id="header-truncated"),
        pytest.param(lambda b: b[:3], id="shorter-than-magic"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: b"\x00\x00\x0d\x03" + b[4:], id="float-idx"),
        pytest.param(lambda b: b"\x00\x00\x08\x00", id="zero-dims"),
        pytest.param(lambda b: b"GIF89a garbage bytes here", id="garbage"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_rejects_malformed(tmp_path, small_images, mangle, gz):
    bad = mangle(idx_bytes(small_images))
    path = tmp_path / ("x.gz" if gz else "x")
    path.write_bytes(gzip.compress(bad) if gz else bad)
    with pytest.raises(DataSourceError):
        read_idx(path)


def test_read_idx_rejects_broken_gzip_streams(tmp_path, small_images):
    packed = gzip.compress(idx_bytes(small_images))
    truncated = tmp_path / "t.gz"
    truncated.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataSourceError):
        read_idx(truncated)
    not_gzip = tmp_path / "n.gz"
    not_gzip.write_bytes(idx_bytes(small_images))  # .gz name, plain content
    with pytest.raises(DataSourceError):
        read_idx(not_gzip)


def test_idx_folder_source_and_ids(tmp_path):
    rng = np.random.default_rng(1)
    tr = rng.integers(0, 256, (12, 8, 8), dtype=np.uint8)
    te = rng.integers(0, 256, (5, 8, 8), dtype=np.uint8)
    write_idx_pair(tmp_path, "train", tr, np.arange(12) % 3)
    write_idx_pair(tmp_path, "t10k", te, np.arange(5) % 3)
    raw = load_idx_dir("toy", tmp_path, ("a", "b", "c"))
    assert raw.image_shape == (1, 8, 8) and raw.num_classes == 3
    assert raw.train.labels.dtype == np.int64
    bundle = materialize(raw, build_manifest(raw, seed=0, third_party_fraction=0.25))
    for s in (bundle.train, bundle.third_party, bundle.test):
        for k, sid in enumerate(s.ids):
            _, split, key = parse_sample_id(sid)
            i = int(key)
            source_rows = tr if split == "train" else te
            np.testing.assert_array_equal(s.images[k, 0].numpy(), source_rows[i])


def test_idx_folder_rejects_length_mismatch_and_missing_files(tmp_path):
    rng = np.random.default_rng(2)
    write_idx_pair(tmp_path, "train", rng.integers(0, 256, (4, 8, 8)), np.arange(3))
    write_idx_pair(tmp_path, "t10k", rng.integers(0, 256, (2, 8, 8)), np.arange(2))
    with pytest.raises(DataSourceError, match="differ in length"):
        load_idx_dir("toy", tmp_path, ("a",))
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    write_idx_pair(tmp_path, "train", rng.integers(0, 256, (3, 8, 8)), np.arange(3))
    with pytest.raises(DataSourceError, match="missing dataset file t10k-labels"):
        load_idx_dir("toy", tmp_path, ("a",))


def test_fashion_mnist_root_override_reads_a_copy(tmp_path, fmnist_raw):
    src = Path("/usr/share/datasets/fashion-mnist")
    copy = tmp_path / "FashionMNIST" / "raw"  # torchvision's layout under a root
    copy.mkdir(parents=True)
    for f in src.glob("t10k-*"):
        shutil.copy(f, copy / f.name)
    with pytest.raises(DataSourceError, match="missing dataset file train-images"):
        load_source("fashion-mnist", tmp_path)
    for f in src.glob("train-*"):
        shutil.copy(f, copy / f.name)
    raw = load_source("fashion-mnist", tmp_path)
    np.testing.assert_array_equal(raw.test.images, fmnist_raw.test.images)


def test_unknown_source_name_is_a_clear_error():
    with pytest.raises(DataSourceError, match=r"unknown dataset 'imagenet'.*fashion-mnist"):
        load_source("imagenet")


def test_missing_folders_are_clear_errors(tmp_path):
    nowhere = tmp_path / "nowhere"
    with pytest.raises(DataSourceError, match="does not exist"):
        load_source("fashion-mnist", nowhere)
    with pytest.raises(DataSourceError, match="does not exist"):
        load_source("mnist", nowhere)
    with pytest.raises(DataSourceError, match="needs --data-root"):
        load_source("mnist")
    with pytest.raises(DataSourceError, match="needs --data-root"):
        load_source("cifar10")
    with pytest.raises(DataSourceError, match="no CIFAR-10 batches"):
        load_source("cifar10", nowhere)
    with pytest.raises(DataSourceError, match="train/ and test/"):
        load_source(f"folder:{nowhere}")


def test_missing_fashion_mnist_env_path_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FORGETFLOW_FASHION_MNIST", str(tmp_path / "absent"))
    with pytest.raises(DataSourceError, match="absent"):
        load_source("fashion-mnist")
