"""Offline image sources: each returns raw uint8 images plus labels, never touching a network.

A source is named by a string; `load_source(name, root)` resolves it. Positions in the returned
arrays are the positions in the source file, which makes sample ids (`<name>:<split>:<i>`) stable.
"""

from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


class DataSourceError(ValueError):
    """Raised when a source is unknown or its files are missing or malformed."""


@dataclass(frozen=True)
class RawSplit:
    """One source file: images as uint8 [N, C, H, W] and int64 labels."""

    images: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class RawSource:
    """A whole source: its name, class names and the train/test files."""

    name: str
    classes: tuple[str, ...]
    train: RawSplit
    test: RawSplit

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]


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


def load_cifar10_dir(root: Path) -> RawSource:
    """torchvision's extracted `cifar-10-batches-py` folder (no download)."""
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    if not (folder / "data_batch_1").exists():
        raise DataSourceError(f"no CIFAR-10 batches under {root}")

    def batch(file: str) -> tuple[np.ndarray, np.ndarray]:
        with open(folder / file, "rb") as fh:
            d = pickle.load(fh, encoding="latin1")
        return d["data"].reshape(-1, 3, 32, 32), np.asarray(d["labels"], dtype=np.int64)

    parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
    tx, ty = batch("test_batch")
    classes = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")
    return RawSource(
        "cifar10", classes,
        RawSplit(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])),
        RawSplit(tx, ty),
    )


def load_image_folder(root: Path, size: int = 32) -> RawSource:
    """Users' own data: `root/{train,test}/<class>/<image>`, sorted by path for stable ids."""
    from PIL import Image

    train_dir, test_dir = root / "train", root / "test"
    if not train_dir.is_dir() or not test_dir.is_dir():
        raise DataSourceError(f"image folder {root} needs train/ and test/ subfolders")
    classes = tuple(sorted(p.name for p in train_dir.iterdir() if p.is_dir()))
    if not classes:
        raise DataSourceError(f"{train_dir} has no class folders")

    def read(split_dir: Path) -> RawSplit:
        images, labels = [], []
        for label, cls in enumerate(classes):
            for file in sorted((split_dir / cls).glob("*")) if (split_dir / cls).is_dir() else []:
                try:
                    img = Image.open(file).convert("RGB").resize((size, size))
                except (OSError, Image.UnidentifiedImageError) as exc:
                    raise DataSourceError(f"{file} is not a readable image: {exc}") from exc
                images.append(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1))
                labels.append(label)
        if not images:
            raise DataSourceError(f"{split_dir} holds no images")
        return RawSplit(np.stack(images), np.asarray(labels, dtype=np.int64))

    return RawSource(f"folder-{root.name}", classes, read(train_dir), read(test_dir))


def _torchvision_raw(root: Path, folder: str) -> Path:
    return root / folder / "raw"


def load_source(name: str, root: str | os.PathLike[str] | None = None) -> RawSource:
    """Resolve a source name: fashion-mnist, digits, mnist, cifar10 or folder:<path>."""
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
            raise DataSourceError("cifar10 needs --data-root (torchvision's CIFAR-10 folder)")
        return load_cifar10_dir(Path(root))
    if name.startswith("folder:"):
        return load_image_folder(Path(name.split(":", 1)[1]))
    raise DataSourceError(
        f"unknown dataset {name!r}: use fashion-mnist, digits, mnist, cifar10 or folder:<path>"
    )


def default_source_name() -> str:
    """Fashion-MNIST where Debian's files are present, else the bundled digits."""
    return "fashion-mnist" if DEBIAN_FASHION_MNIST.is_dir() else "digits"
