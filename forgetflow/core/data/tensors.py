"""In-memory tensors for a manifest: what training, unlearning and evaluation consume."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from forgetflow.core.data.manifest import Manifest, ManifestError, positions
from forgetflow.core.data.raw import ClassedImages
from forgetflow.core.data.sources import RawSource


@dataclass(frozen=True)
class ImageSet:
    """uint8 images [N, C, H, W], int64 labels and the sample ids they came from."""

    images: torch.Tensor
    labels: torch.Tensor
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray | torch.Tensor) -> ImageSet:
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return ImageSet(self.images[idx], self.labels[idx], self.ids[idx.numpy()])

    def where(self, mask: np.ndarray) -> ImageSet:
        return self.take(np.flatnonzero(mask))

    def with_images(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> ImageSet:
        return replace(self, images=images, labels=self.labels if labels is None else labels)


@dataclass(frozen=True)
class DataBundle(ClassedImages):
    """The splits of one data version plus what a model needs to know about them.
    `third_party` is the reference part of the unseen pool (methods may use it); `holdout` is
    the evaluation-only part (None for manifests written before the split existed)."""

    train: ImageSet
    third_party: ImageSet
    test: ImageSet
    classes: tuple[str, ...]
    source: str
    holdout: ImageSet | None = None

    @property
    def evaluation_pool(self) -> ImageSet:
        """Unseen data for evaluation: the holdout when the manifest has one."""
        return self.holdout if self.holdout is not None and len(self.holdout) else self.third_party


def materialize(raw: RawSource, manifest: Manifest) -> DataBundle:
    """Gather each split's pixels from the source; labels come from the manifest."""
    if len(manifest) and not str(manifest.ids[0]).startswith(raw.name + ":"):
        raise ManifestError(f"manifest ids are not from source {raw.name!r}")
    is_test, pos = positions(manifest, raw)
    out = {}
    for split in ("train", "third_party", "holdout", "test"):
        rows = np.flatnonzero(manifest.split == split)
        imgs = np.empty((len(rows), *raw.image_shape), dtype=np.uint8)
        t_rows, f_rows = rows[is_test[rows]], rows[~is_test[rows]]
        order = np.concatenate([f_rows, t_rows])
        imgs[: len(f_rows)] = raw.train.images[pos[f_rows]]
        imgs[len(f_rows):] = raw.test.images[pos[t_rows]]
        out[split] = ImageSet(
            torch.from_numpy(imgs),
            torch.from_numpy(manifest.labels[order].astype(np.int64)),
            manifest.ids[order],
        )
    holdout = out["holdout"] if len(out["holdout"]) else None
    return DataBundle(out["train"], out["third_party"], out["test"], raw.classes, raw.name,
                      holdout)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float32 in [0, 1], the models' input contract."""
    return images.float().div_(255.0)
