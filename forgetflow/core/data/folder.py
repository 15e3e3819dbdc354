"""A local image folder as a store: list its files with a size+mtime stamp, read their bytes."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from forgetflow.core.data.images import StoredFile, decode_source, safe_name
from forgetflow.core.data.raw import DataSourceError, RawSource


def list_folder(root: Path) -> list[StoredFile]:
    """Every file under root's train/ and test/ (and subjects.csv), with stamps."""
    if not (root / "train").is_dir() or not (root / "test").is_dir():
        raise DataSourceError(f"image folder {root} needs train/ and test/ subfolders")
    files = []
    candidates = [root / "subjects.csv"] if (root / "subjects.csv").is_file() else []
    for split in ("train", "test"):
        for path in (root / split).rglob("*"):
            if path.is_symlink() and (path.is_dir() or not path.exists()):
                raise DataSourceError(
                    f"{path.relative_to(root).as_posix()} is a symbolic link to "
                    f"{'a folder' if path.exists() else 'nothing'}: image folders are read "
                    "without following linked folders (copy or move the images in)")
            if path.is_file():
                candidates.append(path)
    for path in candidates:
        st = path.stat()
        rel = unicodedata.normalize("NFC", path.relative_to(root).as_posix())
        files.append(StoredFile(rel, str(path), f"{st.st_size}:{st.st_mtime_ns}"))
    return files


def folder_name(root: Path) -> str:
    return safe_name(root.resolve().name)


def read_file(f: StoredFile) -> bytes:
    try:
        return Path(f.location).read_bytes()
    except OSError as exc:
        raise DataSourceError(f"{f.location} cannot be read: {exc.strerror}") from exc


def load_image_folder(root: Path, channels: int = 3, image_size: int = 32) -> RawSource:
    """Users' own data: `root/{train,test}/<class>/.../<image>`, decoded in one pass."""
    return decode_source(folder_name(root), list_folder(root), read_file, channels, image_size)
