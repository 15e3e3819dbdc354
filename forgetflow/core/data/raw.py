"""The raw-source types every reader returns, apart from the readers so that the file-based
readers (folder, images) and the name resolver (sources) can each import them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


class DataSourceError(ValueError):
    """Raised when a source is unknown or its files are missing or malformed."""


@dataclass(frozen=True)
class RawSplit:
    """One source file: images as uint8 [N, C, H, W], int64 labels and, for sources whose
    rows are files, each row's key (None: the key is the row's position)."""

    images: np.ndarray
    labels: np.ndarray
    keys: np.ndarray | None = None

    def key_list(self) -> list[str]:
        return [str(k) for k in self.keys] if self.keys is not None \
            else [str(i) for i in range(len(self.labels))]


class ClassedImages:
    """What a whole dataset (raw or materialized) answers from its classes and train split."""

    classes: tuple[str, ...]
    train: RawSplit | Any

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]


@dataclass(frozen=True)
class RawSource(ClassedImages):
    """A whole source: its name, class names and the train/test files."""

    name: str
    classes: tuple[str, ...]
    train: RawSplit
    test: RawSplit
    subjects: dict[str, str] | None = None  # "<split>/<key>" -> subject, from subjects.csv
    subjects_unmatched: tuple[str, ...] = ()  # subjects.csv paths with no image (stale lines)

    @property
    def keyed(self) -> bool:
        """Rows named by path: splits and subjects are drawn per id, not per position."""
        return self.train.keys is not None
