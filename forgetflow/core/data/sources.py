"""Offline image sources: each returns raw uint8 images plus labels, never touching a network.

A source is named by a string; `load_source(name, root)` resolves it. A row's key is its
position in the source file (the MNIST family, CIFAR-10, digits) or its path (users' image
folders), which makes sample ids (`<name>:<split>:<key>`) stable.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from forgetflow.core.data.raw import DataSourceError, RawSource, RawSplit

__all__ = ["DataSourceError", "RawSource", "RawSplit", "load_source"]

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


FASHION_CLASSES = (
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle-boot",
)


def _open_maybe_gz(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.exists():
            return candidate
    raise DataSourceError(f"missing dataset file {stem}[.gz] under {root}")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST family's format), gzipped or not."""
    try:
        with _open_maybe_gz(path) as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:  # not gzip (BadGzipFile) or a truncated gzip stream
        raise DataSourceError(f"{path} cannot be read: {exc}") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataSourceError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    if ndim == 0 or len(data) < 4 + 4 * ndim:
        raise DataSourceError(f"{path} has no or an incomplete IDX header (truncated?)")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataSourceError(f"{path} is truncated: expected {np.prod(dims)} values")
    return body.reshape(dims)


def _idx_pair(root: Path, prefix: str) -> RawSplit:
    images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    if len(images) != len(labels):
        raise DataSourceError(f"{root}: {prefix} images and labels differ in length")
    return RawSplit(images[:, None, :, :].copy(), labels)


def load_idx_dir(name: str, root: Path, classes: tuple[str, ...]) -> RawSource:
    """MNIST-family IDX files in one folder (Debian layout or torchvision's `raw/`)."""
    if not root.is_dir():
        raise DataSourceError(f"dataset folder {root} does not exist")
    return RawSource(name, classes, _idx_pair(root, "train"), _idx_pair(root, "t10k"))


def load_digits_source() -> RawSource:
    """sklearn's bundled 8x8 digits, upscaled x2 to 16x16 so the CNN's pooling fits."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0 * 255.0).round().astype(np.uint8)
    images = images.repeat(2, axis=1).repeat(2, axis=2)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(labels))  # fixed split: the bundled file has no test part
    cut = int(len(order) * 0.8)
    train_idx, test_idx = np.sort(order[:cut]), np.sort(order[cut:])
    classes = tuple(str(i) for i in range(10))
    return RawSource(
        "digits", classes,
        RawSplit(images[train_idx], labels[train_idx]),
        RawSplit(images[test_idx], labels[test_idx]),
    )


CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck")
CIFAR_RECORD = 1 + 3 * 32 * 32  # one label byte, then 3072 pixel bytes (R, G, B planes)


def _cifar_bin(path: Path) -> RawSplit:
    data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    if data.size == 0 or data.size % CIFAR_RECORD:
        raise DataSourceError(f"{path} is not a CIFAR-10 binary batch (size {data.size})")
    records = data.reshape(-1, CIFAR_RECORD)
    if records[:, 0].max() > 9:
        raise DataSourceError(f"{path} has labels above 9: not a CIFAR-10 binary batch")
    return RawSplit(records[:, 1:].reshape(-1, 3, 32, 32).copy(),
                    records[:, 0].astype(np.int64))


def load_cifar10_dir(root: Path) -> RawSource:
    """The dataset's binary version (`cifar-10-batches-bin`, no download). The Python version
    is pickled, and unpickling a file runs whatever code it names: it is refused."""
    folder = root / "cifar-10-batches-bin" if (root / "cifar-10-batches-bin").is_dir() else root
    if not (folder / "data_batch_1.bin").exists():
        if (root / "cifar-10-batches-py").is_dir() or (root / "data_batch_1").exists():
            raise DataSourceError(
                f"{root} holds CIFAR-10's Python (pickle) version, which forgetflow does not "
                "read: unpickling runs code. Use the binary version (cifar-10-batches-bin)")
        raise DataSourceError(f"no CIFAR-10 batches under {root}")
    parts = [_cifar_bin(folder / f"data_batch_{i}.bin") for i in range(1, 6)]
    test = _cifar_bin(folder / "test_batch.bin")
    train = RawSplit(np.concatenate([p.images for p in parts]),
                     np.concatenate([p.labels for p in parts]))
    return RawSource("cifar10", CIFAR_CLASSES, train, test)


def _torchvision_raw(root: Path, folder: str) -> Path:
    return root / folder / "raw"


def load_source(name: str, root: str | os.PathLike[str] | None = None, channels: int = 3,
                image_size: int = 32) -> RawSource:
    """Resolve a source name: fashion-mnist, digits, mnist, cifar10 or folder:<path>.
    `channels` and `image_size` shape image folders only; the others keep their own."""
    if name == "fashion-mnist":
        path = Path(root or os.environ.get("FORGETFLOW_FASHION_MNIST", DEBIAN_FASHION_MNIST))
        if _torchvision_raw(path, "FashionMNIST").is_dir():
            path = _torchvision_raw(path, "FashionMNIST")
        return load_idx_dir(name, path, FASHION_CLASSES)
    if name == "mnist":
        if root is None:
            raise DataSourceError("mnist needs --data-root (a torchvision root or IDX folder)")
        path = Path(root)
        if _torchvision_raw(path, "MNIST").is_dir():
            path = _torchvision_raw(path, "MNIST")
        return load_idx_dir(name, path, tuple(str(i) for i in range(10)))
    if name == "digits":
        return load_digits_source()
    if name == "cifar10":
        if root is None:
            raise DataSourceError("cifar10 needs --data-root (the folder holding "
                                  "cifar-10-batches-bin)")
        return load_cifar10_dir(Path(root))
    if name.startswith("folder:"):
        from forgetflow.core.data.folder import load_image_folder

        return load_image_folder(Path(name.split(":", 1)[1]), channels, image_size)
    if name.startswith("s3://"):
        raise DataSourceError(f"{name}: S3 sources are read by the data registry "
                              "(`forgetflow data prepare`), not by this reader")
    raise DataSourceError(
        f"unknown dataset {name!r}: use fashion-mnist, digits, mnist, cifar10, folder:<path> "
        "or s3://bucket/prefix"
    )


def default_source_name() -> str:
    """Fashion-MNIST where Debian's files are present, else the bundled digits."""
    return "fashion-mnist" if DEBIAN_FASHION_MNIST.is_dir() else "digits"
