"""Manifests: the table of sample ids, labels, splits and subjects that defines a data version.

A manifest is deterministic from (source, seed, third_party_fraction, subject_size,
holdout_fraction); it never stores pixels for read-only system sources, only ids that point back
into the source files. The third-party pool is split in two: rows keep the split value
`third_party` (the *reference* part methods and gate references may use) or get `holdout`
(evaluation only: third_party_auc, MIA non-members, probes), so no existing value is renamed.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forgetflow.core.data.sources import RawSource
from forgetflow.core.ids import isin_ids

SPLITS = ("train", "third_party", "holdout", "test")
THIRD_PARTY_SPLITS = ("third_party", "holdout")  # the whole never-trained-on pool
COLUMNS = ("id", "label", "split", "subject")


class ManifestError(ValueError):
    """A manifest file or a manifest operation is invalid."""


@dataclass(frozen=True)
class Manifest:
    """Column arrays, one row per sample, in a stable order (source file, then position)."""

    ids: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    subject: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, mask: np.ndarray) -> Manifest:
        return Manifest(self.ids[mask], self.labels[mask], self.split[mask], self.subject[mask])

    def of_split(self, split: str) -> Manifest:
        if split not in SPLITS:
            raise ManifestError(f"unknown split {split!r}; expected one of {SPLITS}")
        return self.select(self.split == split)

    def without(self, ids: set[str] | np.ndarray) -> Manifest:
        # numpy's isin on object arrays compares every pair (O(n*m)); fixed-width strings
        # take its sort-based path
        drop = np.asarray(sorted(map(str, ids)), dtype=str)
        return self.select(~np.isin(self.ids.astype(str), drop))

    def train_rows_missing_from(self, later: Manifest,
                                excluded: frozenset[str] = frozenset()) -> Manifest:
        """This version's training rows that a later version lacks and no request excluded:
        rows a re-scan of the source dropped (their files were deleted) while a model trained
        on this version still holds them."""
        gone = set(self.ids[self.split == "train"].tolist()) - set(later.ids.tolist()) - excluded
        return self.select(isin_ids(self.ids, gone))

    def digest(self) -> str:
        """sha256 over the rows, so two manifests with the same content share a digest."""
        h = hashlib.sha256()
        for row in zip(self.ids, self.labels, self.split, self.subject, strict=True):
            h.update(("\t".join(map(str, row)) + "\n").encode())
        return h.hexdigest()

    def write_csv(self, path: str | Path) -> None:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            self.write_csv_to(fh)

    def write_csv_to(self, fh) -> None:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(zip(self.ids, self.labels, self.split, self.subject, strict=True))

    @classmethod
    def read_csv(cls, path_or_file) -> Manifest:
        is_path = isinstance(path_or_file, str | Path)
        fh = open(path_or_file, newline="", encoding="utf-8") if is_path else path_or_file
        with fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if tuple(header or ()) != COLUMNS:
                raise ManifestError(f"manifest header must be {','.join(COLUMNS)}, got {header}")
            rows = list(reader)
        if not rows:
            return cls(*(np.asarray([], dtype=t) for t in (object, np.int64, object, object)))
        ids, labels, split, subject = zip(*rows, strict=True)
        return cls(
            np.asarray(ids, dtype=object), np.asarray(labels, dtype=np.int64),
            np.asarray(split, dtype=object), np.asarray(subject, dtype=object),
        )


def sample_id(source: str, file_split: str, key: int | str) -> str:
    """The contract id `<dataset>:<split>:<key>`; the split is the source file (train/test),
    the key a position or, for image folders, the image's path under the split folder."""
    return f"{source}:{file_split}:{key}"


def parse_sample_id(sample: str) -> tuple[str, str, str]:
    """(dataset, file split, key). The dataset part never holds a colon; the key may. A key is
    a position or a relative path as a folder scan yields it: never absolute, no `.`, `..` or
    empty segment."""
    parts = sample.split(":", 2)
    if len(parts) != 3 or not parts[0] or parts[1] not in ("train", "test") or not parts[2] \
            or parts[2].startswith("/") or {".", "..", ""} & set(parts[2].split("/")):
        raise ManifestError(f"malformed sample id {sample!r}; expected <dataset>:<split>:<key>")
    return parts[0], parts[1], parts[2]


def _uniform(seed: int, salt: str, keys: list[str]) -> np.ndarray:
    """One draw in [0, 1) per key from sha256(seed, salt, key): the same for a key however
    many other rows the source has, so a re-scan moves no existing row between splits."""
    out = np.empty(len(keys))
    for i, key in enumerate(keys):
        digest = hashlib.sha256(f"{seed}\0{salt}\0{key}".encode()).digest()
        out[i] = int.from_bytes(digest[:8], "big") / 2.0**64
    return out


def _keyed_assignment(raw: RawSource, seed: int, third_party_fraction: float,
                      subject_size: int, holdout_fraction: float,
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Splits and subjects of a path-keyed source, drawn per row from its key."""
    train_keys = [f"train/{k}" for k in raw.train.key_list()]
    all_keys = train_keys + [f"test/{k}" for k in raw.test.key_list()]
    split = np.full(len(train_keys), "train", dtype=object)
    pool = _uniform(seed, "third_party", train_keys) < third_party_fraction
    split[pool] = "third_party"
    split[pool & (_uniform(seed, "holdout", train_keys) < holdout_fraction)] = "holdout"
    if raw.subjects is not None:
        subject = np.asarray([raw.subjects.get(k, "") for k in all_keys], dtype=object)
    else:
        n_subjects = max(1, -(-len(all_keys) // subject_size))
        draws = _uniform(seed, "subject", all_keys)
        subject = np.asarray([f"subj-{int(u * n_subjects):05d}" for u in draws], dtype=object)
    return split, subject


def build_manifest(
    raw: RawSource, seed: int = 0, third_party_fraction: float = 0.1, subject_size: int = 20,
    holdout_fraction: float = 0.5,
) -> Manifest:
    """Split the source train file into train/third_party(/holdout) and assign subjects, all
    seeded. The holdout draw uses its own generator, so the train rows and subjects are the
    same for every holdout_fraction (models trained before the split stay valid)."""
    if not 0.0 < third_party_fraction < 1.0:
        raise ManifestError("third_party_fraction must be in (0, 1)")
    if not 0.0 <= holdout_fraction < 1.0:
        raise ManifestError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
    if subject_size < 1:
        raise ManifestError("subject_size must be >= 1")
    n_train, n_test = len(raw.train.labels), len(raw.test.labels)
    if len(np.unique(raw.train.labels)) < 2:
        raise ManifestError(f"source {raw.name!r} has {len(np.unique(raw.train.labels))} class "
                            "with training images: a classifier needs at least 2 (add a class "
                            "folder)")
    ids = [sample_id(raw.name, "train", k) for k in raw.train.key_list()]
    ids += [sample_id(raw.name, "test", k) for k in raw.test.key_list()]
    labels = np.concatenate([raw.train.labels, raw.test.labels]).astype(np.int64)
    if raw.keyed or raw.subjects is not None:
        split, subject_of = _keyed_assignment(raw, seed, third_party_fraction, subject_size,
                                              holdout_fraction)
        if (split == "train").sum() < 2 or (split != "train").sum() < 2:
            raise ManifestError(
                f"{n_train} training images give {(split == 'train').sum()} train and "
                f"{(split != 'train').sum()} third-party rows at third_party_fraction "
                f"{third_party_fraction}: both need at least 2 (add images)")
        return Manifest(np.asarray(ids, dtype=object), labels,
                        np.concatenate([split, np.full(n_test, "test", dtype=object)]),
                        subject_of)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_train)
    split = np.full(n_train, "train", dtype=object)
    pool = order[: int(round(n_train * third_party_fraction))]
    split[pool] = "third_party"
    held = np.random.default_rng([seed, 0x401D]).permutation(pool)
    split[held[: int(round(len(pool) * holdout_fraction))]] = "holdout"
    n_all = n_train + n_test
    subject_of = np.empty(n_all, dtype=object)
    subject_of[rng.permutation(n_all)] = [f"subj-{k // subject_size:05d}" for k in range(n_all)]
    return Manifest(
        np.asarray(ids, dtype=object), labels,
        np.concatenate([split, np.full(n_test, "test", dtype=object)]),
        subject_of,
    )


def positions(manifest: Manifest, raw: RawSource | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(is_test_file, position) per row: the key itself, or its row in a path-keyed source."""
    parsed = [parse_sample_id(s) for s in manifest.ids]
    is_test = np.asarray([p[1] == "test" for p in parsed], dtype=bool)
    if raw is None or not raw.keyed:
        if not all(p[2].isdigit() for p in parsed):
            raise ManifestError("manifest ids do not name source positions")
        return is_test, np.asarray([int(p[2]) for p in parsed], dtype=np.int64)
    where = {("train", k): i for i, k in enumerate(raw.train.key_list())}
    where.update({("test", k): i for i, k in enumerate(raw.test.key_list())})
    missing = [s for s, p in zip(manifest.ids, parsed, strict=True) if (p[1], p[2]) not in where]
    if missing:
        raise ManifestError(f"{len(missing)} manifest row(s) are not in source {raw.name!r} "
                            "any more (images removed since the data version was prepared)")
    return is_test, np.asarray([where[(p[1], p[2])] for p in parsed], dtype=np.int64)
