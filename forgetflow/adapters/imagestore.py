"""Where a data version's pixels come from: built-in sources once per process, users' image
folders and S3 prefixes decoded once per source state and kept in the workspace.

A source state is named by its fingerprint (every image's path with its size+mtime or ETag,
plus `data.channels` and `data.image_size`). Its decoded arrays live in
`<workspace>/cache/decoded/<fingerprint>/` (one uint8 .npy per split file plus the keys), so
`train`, `process` and `report` never decode an image twice; a data version records the
fingerprint it was built from and is read back from that cache even after the folder changed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forgetflow.adapters.workspace import Workspace
from forgetflow.core.data.folder import folder_name, list_folder, read_file
from forgetflow.core.data.images import ImageEntry, StoredFile, decode_source
from forgetflow.core.data.images import fingerprint as state_fingerprint
from forgetflow.core.data.sources import DataSourceError, RawSource, RawSplit, load_source


@dataclass(frozen=True)
class SourceSpec:
    """`data.source` with the settings that shape its pixels."""

    source: str
    root: str | None = None
    channels: int = 3
    image_size: int = 32

    @property
    def user_images(self) -> bool:
        return self.source.startswith(("folder:", "s3://"))


@functools.lru_cache(maxsize=4)
def builtin_source(name: str, root: str | None) -> RawSource:
    """Read-only system sources are loaded once per process."""
    return load_source(name, root)


def _cache_root(ws: Workspace) -> Path:
    return ws.root / "cache" / "decoded"


def _save(raw: RawSource, folder: Path, spec: SourceSpec, stamps: dict[str, str]) -> None:
    """Write atomically: a half-written cache is never read. `stamps` ("split/key" → stamp)
    let a later state reuse this one's pixels for files that did not change."""
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    meta: dict = {"name": raw.name, "classes": list(raw.classes), "subjects": raw.subjects,
                  "subjects_unmatched": list(raw.subjects_unmatched),
                  "spec": [spec.source, spec.channels, spec.image_size]}
    digest = hashlib.sha256()
    for split, part in (("train", raw.train), ("test", raw.test)):
        np.save(tmp / f"{split}.npy", part.images)
        keys = part.key_list()
        meta[split] = {"keys": keys, "labels": part.labels.tolist()}
        digest.update(json.dumps(meta[split]).encode())
        digest.update(np.ascontiguousarray(part.images).tobytes())
        meta[split]["stamps"] = [stamps[f"{split}/{k}"] for k in keys]
    meta["pixels_sha256"] = digest.hexdigest()
    (tmp / "meta.json").write_text(json.dumps(meta))
    try:
        tmp.replace(folder)
    except OSError:  # another process cached the same state first
        shutil.rmtree(tmp, ignore_errors=True)


@functools.lru_cache(maxsize=2)
def _load(folder: Path) -> RawSource:
    meta = _meta(folder)

    def split(name: str) -> RawSplit:
        return RawSplit(np.load(folder / f"{name}.npy", mmap_mode="r"),
                        np.asarray(meta[name]["labels"], dtype=np.int64),
                        np.asarray(meta[name]["keys"], dtype=object))

    return RawSource(meta["name"], tuple(meta["classes"]), split("train"), split("test"),
                     meta["subjects"], tuple(meta.get("subjects_unmatched", ())))


def _meta(folder: Path) -> dict:
    return json.loads((folder / "meta.json").read_text())


def _reuse_from(cache: Path, spec: SourceSpec) -> Callable[[ImageEntry], np.ndarray | None]:
    """Pixels of unchanged files from the newest cached state of the same source, so a
    re-scan after a few added images decodes only those."""
    states = sorted((d for d in cache.iterdir() if (d / "meta.json").is_file()),
                    key=lambda d: d.stat().st_mtime, reverse=True) if cache.is_dir() else []
    wanted = [spec.source, spec.channels, spec.image_size]
    state, meta = next(((d, m) for d in states if (m := _meta(d)).get("spec") == wanted),
                       (None, None))
    if state is None or meta is None:  # no earlier state of this source
        return lambda e: None
    raw = _load(state)
    where = {(split, key, stamp): (part, row)
             for split, part in (("train", raw.train), ("test", raw.test))
             for row, (key, stamp) in enumerate(zip(meta[split]["keys"], meta[split]["stamps"],
                                                    strict=True))}

    def reuse(e: ImageEntry) -> np.ndarray | None:
        hit = where.get((e.split, e.key, e.file.stamp))
        return None if hit is None else hit[0].images[hit[1]]

    return reuse


def _store(ws: Workspace, spec: SourceSpec
           ) -> tuple[str, list[StoredFile], Callable[[StoredFile], bytes]]:
    """(dataset name, files, reader) of a folder or an S3 prefix."""
    if spec.source.startswith("s3://"):
        from forgetflow.adapters.s3images import list_s3, parse_s3_source, s3_name, s3_reader

        s3 = parse_s3_source(spec.source)
        return s3_name(s3), list_s3(s3), s3_reader(s3, ws.root / "cache" / "s3-objects")
    path = Path(spec.source.split(":", 1)[1]).expanduser()
    return folder_name(path), list_folder(path), read_file


def open_source(ws: Workspace, spec: SourceSpec, fingerprint: str | None = None,
                pixels: str | None = None) -> tuple[RawSource, str | None]:
    """The source's rows and, for user images, the fingerprint of the state they come from.
    A data version passes its `fingerprint` (that state's cache is used when present) and its
    `pixels` digest (a re-decoded source must match it, or the images changed since)."""
    if not spec.user_images:
        return builtin_source(spec.source, spec.root), None
    cache = _cache_root(ws)
    if fingerprint and (cache / fingerprint / "meta.json").is_file():
        return _load(cache / fingerprint), fingerprint
    name, files, read = _store(ws, spec)
    current = state_fingerprint(files, spec.channels, spec.image_size)
    if not (cache / current / "meta.json").is_file():
        raw = decode_source(name, files, read, spec.channels, spec.image_size,
                            reuse=_reuse_from(cache, spec))
        _save(raw, cache / current, spec, {f.path: f.stamp for f in files})
    if pixels and pixels_sha256(ws, current) != pixels:
        raise DataSourceError(
            f"the images under {spec.source} changed since this data version was prepared and "
            "its decoded copy is gone from the workspace cache: run `forgetflow data prepare` "
            "for a version of the images as they are now")
    return _load(cache / current), current


def pixels_sha256(ws: Workspace, fingerprint: str | None) -> str | None:
    """The digest of a decoded state's keys, labels and pixels: equal states, equal data."""
    if fingerprint is None:
        return None
    meta = _cache_root(ws) / fingerprint / "meta.json"
    return json.loads(meta.read_text())["pixels_sha256"] if meta.is_file() else None


def prune_cache(ws: Workspace, keep: set[str]) -> int:
    """Drop decoded states no kept version uses (`data gc`); returns how many went."""
    cache = _cache_root(ws)
    gone = 0
    for folder in cache.iterdir() if cache.is_dir() else []:
        if folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)
            gone += 1
    return gone
