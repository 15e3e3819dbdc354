"""Forget-set extraction: turn deletion requests into the sample ids a model must forget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from forgetflow.core.data.manifest import Manifest

if TYPE_CHECKING:  # torch is imported only by the backdoor scan, so `request submit` is quick
    import torch

    from forgetflow.core.triggers import TriggerSpec

KINDS = ("samples", "subject", "class", "backdoor")


class ForgetSetError(ValueError):
    """A request cannot be honoured as stated (unknown ids, bad class, empty set, ...)."""


@dataclass(frozen=True)
class ForgetRequest:
    """One request in core terms; exactly one selector is set, matching `kind`."""

    kind: str
    ids: tuple[str, ...] = ()
    subject: str | None = None
    label: int | None = None
    trigger: TriggerSpec | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ForgetSetError(f"unknown request kind {self.kind!r}; expected one of {KINDS}")
        needed = {"samples": bool(self.ids), "subject": bool(self.subject),
                  "class": self.label is not None, "backdoor": self.trigger is not None}
        if not needed[self.kind]:
            raise ForgetSetError(f"a {self.kind} request needs its selector "
                                 "(ids, subject, label or trigger)")


@dataclass(frozen=True)
class ForgetSelection:
    """`forget_ids`: training samples the model must unlearn. `drop_ids`: every row the next
    data version removes (a subject's or a sample's third-party/test rows go too)."""

    forget_ids: np.ndarray
    drop_ids: np.ndarray
    per_request: list[int] = field(default_factory=list)


def select(request: ForgetRequest, manifest: Manifest,
           train_images: torch.Tensor | None = None, num_classes: int | None = None) -> np.ndarray:
    """Boolean mask over the manifest rows the request names (all splits)."""
    if request.kind == "samples":
        # set membership: numpy's isin compares object arrays pairwise (O(n*m))
        wanted = set(map(str, request.ids))
        mask = np.fromiter((str(i) in wanted for i in manifest.ids), dtype=bool,
                           count=len(manifest.ids))
        missing = sorted(wanted - set(manifest.ids[mask].tolist()))
        if missing:
            raise ForgetSetError(
                f"{len(missing)} unknown sample id(s) in this data version, e.g. "
                f"{', '.join(missing[:3])}"
            )
        return mask
    if request.kind == "subject":
        mask = manifest.subject == request.subject
        if not mask.any():
            raise ForgetSetError(f"unknown subject {request.subject!r} in this data version")
        return mask
    if request.kind == "class":
        n = num_classes if num_classes is not None else int(manifest.labels.max()) + 1
        if not 0 <= int(request.label) < n:
            raise ForgetSetError(f"class {request.label} is outside the label space 0..{n - 1}")
        return (manifest.labels == request.label) & (manifest.split != "test")
    if train_images is None:
        raise ForgetSetError("a backdoor request needs the training images to scan")
    from forgetflow.core.triggers import carries_trigger

    train_rows = np.flatnonzero(manifest.split == "train")
    if len(train_rows) != len(train_images):
        raise ForgetSetError("training images do not match the manifest's train split")
    request.trigger.check(tuple(train_images.shape[1:]), num_classes or 1 << 30)
    mask = np.zeros(len(manifest), dtype=bool)
    mask[train_rows[carries_trigger(train_images, request.trigger)]] = True
    return mask


def extract(requests: Sequence[ForgetRequest], manifest: Manifest,
            train_images: torch.Tensor | None = None,
            num_classes: int | None = None) -> ForgetSelection:
    """Union of all requests' selections, checked so the result is a sane forget set."""
    if not requests:
        raise ForgetSetError("no requests to extract a forget set from")
    masks = [select(r, manifest, train_images, num_classes) for r in requests]
    drop = np.logical_or.reduce(masks)
    is_train = manifest.split == "train"
    forget = drop & is_train
    if not forget.any():
        raise ForgetSetError("the forget set is empty: no named sample is in the training split")
    if forget.sum() == is_train.sum():
        raise ForgetSetError("the request would forget the entire training set")
    class_requests = {int(r.label) for r in requests if r.kind == "class"}
    remaining = set(np.unique(manifest.labels[is_train & ~forget]).tolist())
    emptied = set(np.unique(manifest.labels[is_train]).tolist()) - remaining - class_requests
    if emptied:
        raise ForgetSetError(
            f"the request would leave class(es) {sorted(emptied)} with no training samples; "
            "submit a class request to forget a whole class"
        )
    return ForgetSelection(
        np.sort(manifest.ids[forget]), np.sort(manifest.ids[drop]),
        [int((m & is_train).sum()) for m in masks],
    )


def precision_recall(found: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Extraction quality against known poisoned ids."""
    found_set, truth_set = set(found.tolist()), set(truth.tolist())
    hits = len(found_set & truth_set)
    precision = hits / len(found_set) if found_set else 0.0
    recall = hits / len(truth_set) if truth_set else 1.0
    return precision, recall
