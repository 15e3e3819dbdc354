"""Users' own images: a `train/` and `test/` tree with one folder per class, from any store.

A store (a local folder, an S3 prefix) only lists files and reads bytes; everything else is
decided here, once: which files are images, what each row's key is, how pixels are decoded and
which subject owns an image. A row's key is its path under the split folder (NFC-normalised,
`/`-separated), so adding or removing an image never changes another image's id, and any file
name (commas, spaces, quotes, non-ASCII letters) makes a valid id.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from forgetflow.core.data.raw import DataSourceError, RawSource, RawSplit
from forgetflow.core.ids import MAX_TEXT, PRINTABLE

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

SUBJECTS_FILE = "subjects.csv"
SUBJECT_COLUMNS = ("path", "subject")
IMAGE_SPLITS = ("train", "test")
MAX_ID_CHARS = 200  # the ledger's sample-id column (MAX_TEXT in core.requests)


@dataclass(frozen=True)
class StoredFile:
    """One file of a store: its path relative to the root (`/`-separated), where the store
    reads it from, and a stamp that changes when its content does (size+mtime, or ETag)."""

    path: str
    location: str
    stamp: str


@dataclass(frozen=True)
class ImageEntry:
    """A file that is a row: its split file, class folder, key and where to read it."""

    split: str
    label: str
    key: str
    file: StoredFile


def safe_name(text: str) -> str:
    """A dataset name usable inside ids: no `:`, commas or spaces (the folder's own name is
    kept readable; the key part of an id holds the exact file names)."""
    name = re.sub(r"[^\w.-]+", "-", unicodedata.normalize("NFC", text)).strip("-.")
    return name or "images"


def _nfc(path: str) -> str:
    return unicodedata.normalize("NFC", path)


def image_entries(files: Iterable[StoredFile]) -> tuple[tuple[str, ...], list[ImageEntry]]:
    """Class names (train/'s folders, sorted) and every image row, sorted by split then key.
    Hidden files (a leading dot in any part) are not rows; files directly under a split
    folder or under a test/ class that train/ lacks are errors."""
    entries: list[ImageEntry] = []
    for f in files:
        parts = _nfc(f.path).split("/")
        if parts[0] not in IMAGE_SPLITS or any(p.startswith(".") for p in parts):
            continue
        if len(parts) < 3:
            raise DataSourceError(f"{f.location} lies directly under {parts[0]}/: put each "
                                  f"image in a folder named after its class")
        entries.append(ImageEntry(parts[0], parts[1], "/".join(parts[1:]), f))
    classes = tuple(sorted({e.label for e in entries if e.split == "train"}))
    if not classes:
        raise DataSourceError("train/ has no class folders with images in them")
    unknown = sorted({e.label for e in entries if e.split == "test"} - set(classes))
    if unknown:
        raise DataSourceError(f"test/ has class folders that train/ lacks: {unknown}")
    for split in IMAGE_SPLITS:
        if not any(e.split == split for e in entries):
            raise DataSourceError(f"{split}/ holds no images")
    keys = [(e.split, e.key) for e in entries]
    if len(set(keys)) != len(keys):
        raise DataSourceError("two files have the same path after Unicode normalisation")
    return classes, sorted(entries, key=lambda e: (e.split, e.key))


def fingerprint(files: Iterable[StoredFile], channels: int, size: int) -> str:
    """What decides the decoded arrays: every relevant path with its stamp, and the shape."""
    h = hashlib.sha256(f"images v1 {channels} {size}\n".encode())
    for f in sorted(files, key=lambda f: f.path):
        if f.path.split("/")[0] in IMAGE_SPLITS or f.path == SUBJECTS_FILE:
            h.update(f"{f.path}\t{f.stamp}\n".encode())
    return h.hexdigest()


def decode_image(data: bytes, channels: int, size: int, where: str) -> np.ndarray:
    """Any PIL-readable image to uint8 [channels, size, size] (EXIF orientation applied)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "P", "PA"):
                img = img.convert("RGBA").convert("RGB")  # transparency is dropped
            img = _eight_bit(img)
            img = img.convert("L" if channels == 1 else "RGB").resize(
                (size, size), Image.Resampling.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
    except UnidentifiedImageError as exc:
        raise DataSourceError(f"{where} is not a readable image: not an image format PIL "
                              "reads (remove files that are not images)") from exc
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataSourceError(f"{where} is not a readable image: {exc}") from exc
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def _eight_bit(img: PILImage) -> PILImage:
    """16-bit grayscale (mode I;16*, or I holding values above 255) scaled to 0..255: PIL's
    own conversion to L clips it, turning every non-black pixel white."""
    from PIL import Image

    if not (img.mode.startswith("I;16") or img.mode == "I"):
        return img
    values = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16") or values.max(initial=0) > 255:
        values = values / 257.0
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")


def read_subjects(text: str, where: str) -> dict[str, str]:
    """`subjects.csv`: `path,subject` with paths relative to the root (train/cat/x.png)."""
    rows = csv.reader(io.StringIO(text))
    header = tuple(next(rows, ()))
    if header != SUBJECT_COLUMNS:
        raise DataSourceError(f"{where} must start with the header path,subject; got "
                              f"{','.join(header) or 'nothing'}")
    subjects: dict[str, str] = {}
    for n, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise DataSourceError(f"{where} line {n}: expected a path and a subject")
        path = _nfc(row[0].strip().replace("\\", "/").lstrip("./"))  # Windows separators too
        subject = row[1].strip()
        if len(subject) > MAX_TEXT or not re.fullmatch(PRINTABLE, subject):
            raise DataSourceError(f"{where} line {n}: a subject is at most {MAX_TEXT} printable "
                                  "characters (no tabs or control characters), as a subject "
                                  "request must name it")
        if path.split("/", 1)[0] not in IMAGE_SPLITS:
            raise DataSourceError(f"{where} line {n}: the path must start with "
                                  f"{' or '.join(s + '/' for s in IMAGE_SPLITS)}; got {path}")
        if path in subjects and subjects[path] != subject:
            raise DataSourceError(f"{where} line {n}: the path is listed twice with two "
                                  "subjects")
        subjects[path] = subject
    if not subjects:  # a file naming nobody would silently turn every subject request away
        raise DataSourceError(f"{where} has a header but no path,subject line: list the images' "
                              "subjects, or remove the file to keep the synthetic subjects")
    return subjects


def decode_source(
    name: str, files: list[StoredFile], read: Callable[[StoredFile], bytes],
    channels: int, size: int, reuse: Callable[[ImageEntry], np.ndarray | None] | None = None,
) -> RawSource:
    """Decode every image row of a store into one uint8 array per split file; `reuse` may
    hand back an earlier decoding of an unchanged file (same key and stamp)."""
    if channels not in (1, 3):
        raise DataSourceError(f"data.channels must be 1 or 3, got {channels}")
    if not 8 <= size <= 512:
        raise DataSourceError(f"data.image_size must be in [8, 512], got {size}")
    classes, entries = image_entries(files)
    longest = max(entries, key=lambda e: len(e.split) + len(e.key))
    if len(f"{name}:{longest.split}:{longest.key}") > MAX_ID_CHARS:
        raise DataSourceError(f"{longest.file.location}: its sample id would exceed "
                              f"{MAX_ID_CHARS} characters; shorten the path under {longest.split}/")
    label_of = {c: i for i, c in enumerate(classes)}
    splits = {}
    for split in IMAGE_SPLITS:
        rows = [e for e in entries if e.split == split]
        images = np.empty((len(rows), channels, size, size), dtype=np.uint8)
        for i, e in enumerate(rows):
            done = reuse(e) if reuse is not None else None
            images[i] = done if done is not None else decode_image(read(e.file), channels,
                                                                   size, e.file.location)
        splits[split] = RawSplit(images, np.asarray([label_of[e.label] for e in rows],
                                                    dtype=np.int64),
                                 np.asarray([e.key for e in rows], dtype=object))
    listed = {f.path: f for f in files}
    subjects, unmatched = None, ()
    if SUBJECTS_FILE in listed:
        by_path = read_subjects(read(listed[SUBJECTS_FILE]).decode("utf-8-sig"),
                                listed[SUBJECTS_FILE].location)
        subjects = {f"{e.split}/{e.key}": by_path.get(f"{e.split}/{e.key}", "")
                    for e in entries}
        unmatched = tuple(sorted(set(by_path) - set(subjects)))
        if by_path and len(unmatched) == len(by_path):
            raise DataSourceError(
                f"{listed[SUBJECTS_FILE].location} names none of the images: its paths are "
                f"relative to the source root, e.g. {next(iter(subjects), 'train/<class>/<file>')}"
                f" (its first: {unmatched[0]})")
    return RawSource(name, classes, splits["train"], splits["test"], subjects, unmatched)
