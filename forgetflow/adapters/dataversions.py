"""Data versions in domain terms: prepare v1, poison, drop a batch's ids, load tensors.

Every loader honours the exclusion manifest, so no later training can include a forgotten id
even if a manifest were rebuilt from the source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from forgetflow.adapters.datarepo import DataRepo, DataRepoError, DataVersion, Exclusions, Overlay
from forgetflow.adapters.imagestore import SourceSpec, open_source, pixels_sha256
from forgetflow.core.data.manifest import SPLITS, Manifest, build_manifest
from forgetflow.core.data.tensors import DataBundle, ImageSet, materialize
from forgetflow.core.ids import isin_ids
from forgetflow.core.params import DataParams
from forgetflow.core.progress import progress_bar
from forgetflow.core.triggers import TriggerSpec, poison


def spec_of(data: DataParams) -> SourceSpec:
    """`data.channels` and `data.image_size` shape users' images only."""
    spec = SourceSpec(data.source, data.root)
    return SourceSpec(data.source, data.root, data.channels, data.image_size) \
        if spec.user_images else spec


def version_spec(info: Mapping[str, Any]) -> SourceSpec:
    """The source a version was built from (versions before image folders name it `source`)."""
    spec = SourceSpec(info.get("source_spec") or info["source"], info.get("root"))
    return SourceSpec(spec.source, spec.root, info.get("channels", 3),
                      info.get("image_size", 32)) if spec.user_images else spec


def _counts(manifest: Manifest) -> dict[str, int]:
    return {s: int((manifest.split == s).sum()) for s in SPLITS}


def check_source(repo: DataRepo, data: DataParams, allow_change: bool = False) -> None:
    """Refuse to build a version from another source than the newest version's (DataRepoError):
    params read from the wrong directory (or none: the defaults) would otherwise put another
    dataset under this workspace's deletion history, and requests would be checked against it."""
    if allow_change or not repo.exists():
        return
    head = repo.version()
    before = head.info.get("source_spec") or head.info.get("source")
    if before != data.source:
        raise DataRepoError(
            f"data version {head.tag} was built from {before!r}, and these params ask for "
            f"{data.source!r}: run from the directory of this workspace's params.yaml, or pass "
            "--params / FORGETFLOW_PARAMS; if the source really changed (the images moved), "
            "run `forgetflow data prepare --allow-source-change` once")


def prepare(repo: DataRepo, data: DataParams,
            allow_source_change: bool = False) -> tuple[DataVersion, bool]:
    """Build the manifest from the source minus every excluded id; a new version only when it
    differs from the newest one (from the same source unless `allow_source_change`). Returns
    (version, created)."""
    check_source(repo, data, allow_source_change)
    bar = progress_bar(3, f"prepare {data.source}")
    raw, fingerprint = open_source(repo.ws, spec_of(data))
    bar.update(1)
    manifest = build_manifest(raw, data.seed, data.third_party_fraction, data.subject_size,
                              data.holdout_fraction)
    bar.update(1)
    with bar, repo.locked():
        head = repo.version() if repo.exists() else None
        exclusions = repo.exclusions(head) if head else Exclusions([])
        manifest = manifest.without(exclusions.ids)
        overlay = repo.overlay(head) if head else None
        if head and head.info.get("manifest_sha256") == manifest.digest() \
                and version_spec(head.info) == spec_of(data) \
                and head.info.get("pixels_sha256") == pixels_sha256(repo.ws, fingerprint):
            return head, False
        info = {"source": raw.name, "source_spec": data.source, "root": data.root,
                "channels": data.channels, "image_size": data.image_size,
                "source_fingerprint": fingerprint,
                "pixels_sha256": pixels_sha256(repo.ws, fingerprint),
                "subjects_from": "subjects.csv" if raw.subjects is not None else "synthetic",
                "subjects_unmatched": len(raw.subjects_unmatched),
                "subjects_unmatched_first": list(raw.subjects_unmatched[:5]),
                "seed": data.seed,
                "classes": list(raw.classes), "image_shape": list(raw.image_shape),
                "third_party_fraction": data.third_party_fraction,
                "holdout_fraction": data.holdout_fraction,
                "subject_size": data.subject_size, "rows": _counts(manifest),
                "excluded": len(exclusions.rows), "batch_id": None, "request_ids": [],
                "poison": head.info.get("poison") if head and overlay else None}
        if overlay is not None:
            overlay = overlay.keep(set(manifest.ids[manifest.split == "train"]))
        version = repo.commit(manifest, exclusions, overlay, info,
                              f"prepare {raw.name}: {len(manifest)} rows")
    return version, True


def load_bundle(repo: DataRepo, version: DataVersion) -> tuple[DataBundle, Manifest]:
    """Tensors of a version: source pixels, with project-owned (poisoned) rows overlaid."""
    info = version.info
    raw, _ = open_source(repo.ws, version_spec(info), info.get("source_fingerprint"),
                         info.get("pixels_sha256"))
    manifest = repo.manifest(version).without(repo.exclusions(version).ids)
    bundle = materialize(raw, manifest)
    overlay = repo.overlay(version)
    return (apply_overlay(bundle, overlay) if overlay is not None else bundle), manifest


def apply_overlay(bundle: DataBundle, overlay: Overlay) -> DataBundle:
    """Replace the train rows the overlay names with its pixels and labels."""
    index = {sid: i for i, sid in enumerate(bundle.train.ids)}
    rows = [index[s] for s in overlay.ids if s in index]
    src = [i for i, s in enumerate(overlay.ids) if s in index]
    images, labels = bundle.train.images.clone(), bundle.train.labels.clone()
    images[rows] = torch.from_numpy(overlay.images[src])
    labels[rows] = torch.from_numpy(overlay.labels[src].astype(np.int64))
    train = ImageSet(images, labels, bundle.train.ids)
    return DataBundle(train, bundle.third_party, bundle.test, bundle.classes, bundle.source,
                      bundle.holdout)


def poison_version(repo: DataRepo, spec: TriggerSpec, rate: float, seed: int) -> DataVersion:
    """BadNets-poison the newest version's train split into a project-owned overlay."""
    with repo.locked():
        head = repo.version()
        if repo.overlay(head) is not None:
            raise DataRepoError(f"data version {head.tag} is already poisoned")
        bundle, manifest = load_bundle(repo, head)
        spec.check(bundle.image_shape, bundle.num_classes)
        poisoned, ids = poison(bundle.train, spec, rate, seed)
        rows = isin_ids(poisoned.ids, ids)
        overlay = Overlay(poisoned.ids[rows], poisoned.images[rows].numpy(),
                          poisoned.labels[rows].numpy())
        info = {**head.info, "batch_id": None, "request_ids": [],
                "poison": {"trigger": spec.to_dict(), "rate": rate, "seed": seed,
                           "count": int(len(ids))}}
        return repo.commit(manifest, repo.exclusions(head), overlay, info,
                           f"poison {len(ids)} training rows (rate {rate})")


def drop_version(repo: DataRepo, parent: DataVersion, drop_ids: np.ndarray,
                 request_of: Mapping[str, str], batch_id: str, request_ids: list[int],
                 manifest: Manifest | None = None,
                 fence: Callable[[], None] | None = None) -> DataVersion:
    """The batch's new version: parent's manifest without `drop_ids`, exclusions extended.
    Idempotent per batch id: a rerun returns the version the batch already committed.
    `manifest`: the parent's manifest when the caller already holds it (saves a re-read).
    `fence`: raises unless the caller still holds the batch's lease; asked under the repo's
    lock, so no other worker's commit can come between it and this one."""
    with repo.locked():
        repo.recover()
        done = repo.version_of_batch(batch_id)
        if done is not None:  # a rerun of a batch that committed before it died
            repo.push()
            return done
        if fence is not None:
            fence()
        head = repo.version()
        if head.tag != parent.tag:
            raise DataRepoError(f"data registry moved to {head.tag} while the batch ran on "
                                f"{parent.tag}; rerun the batch")
        if manifest is None:
            manifest = repo.manifest(head)
        exclusions = repo.exclusions(head)
        kept = manifest.without(set(drop_ids.tolist()))
        tag_next = f"v{head.number + 1}"
        added = [(str(i), request_of.get(str(i), ""), batch_id, tag_next) for i in drop_ids]
        overlay = repo.overlay(head)
        if overlay is not None:
            overlay = overlay.keep(set(kept.ids[kept.split == "train"]))
        info: dict[str, Any] = {**head.info, "rows": _counts(kept),
                                "excluded": len(exclusions.rows) + len(added),
                                "batch_id": batch_id, "request_ids": request_ids}
        return repo.commit(kept, Exclusions(exclusions.rows + added), overlay, info,
                           f"batch {batch_id}: drop {len(drop_ids)} rows for requests "
                           f"{','.join(map(str, request_ids))}")
