"""Forget-set extraction: turn deletion requests into the sample ids a model must forget.

`KINDS` is the one table of request kinds: each row names the selector field the kind needs,
how the ledger stores it, and how it selects manifest rows. Request validation
(core/requests.py) and extraction (here) both read it, so a new kind is one new row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from forgetflow.core.data.manifest import Manifest
from forgetflow.core.ids import isin_ids

if TYPE_CHECKING:  # torch is imported only by the backdoor scan, so `request submit` is quick
    import torch

    from forgetflow.core.triggers import TriggerSpec


class ForgetSetError(ValueError):
    """A request cannot be honoured as stated (unknown ids, bad class, empty set, ...)."""


class AlreadyRemoved(ForgetSetError):
    """Every row the request names was removed by earlier requests: nothing is left to
    forget, and the version that removed them honours it."""


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
            raise ForgetSetError(f"unknown request kind {self.kind!r}; expected one of "
                                 f"{tuple(KINDS)}")
        rule = KINDS[self.kind]
        if not rule.given(getattr(self, rule.selector)):
            raise ForgetSetError(f"a {self.kind} request needs its selector `{rule.selector}`")


@dataclass(frozen=True)
class Scope:
    """What a selector reads: the manifest, and for pixel-level kinds the train images."""

    manifest: Manifest
    train_images: torch.Tensor | None = None
    num_classes: int | None = None
    removed: frozenset[str] = frozenset()  # ids the exclusion manifest already holds
    removed_subjects: frozenset[str] = frozenset()  # subjects earlier requests removed
    train_labels: torch.Tensor | None = None  # the labels trained on (poisoned ones included)


def _samples(req: ForgetRequest, scope: Scope) -> np.ndarray:
    mask = isin_ids(scope.manifest.ids, req.ids)
    missing = set(map(str, req.ids)) - set(scope.manifest.ids[mask].tolist())
    unknown = missing - scope.removed
    # counts only: these reasons are stored in the ledger and shown in Prefect artifacts, and
    # the ids may name a person's data (the submitter still has their list)
    if unknown:
        raise ForgetSetError(f"{len(unknown)} unknown sample id(s): never in the data")
    if not mask.any():
        raise AlreadyRemoved(f"all {len(missing)} named row(s) were already removed by "
                             "earlier requests")
    return mask


def _subject(req: ForgetRequest, scope: Scope) -> np.ndarray:
    mask = scope.manifest.subject == req.subject
    if not mask.any() and req.subject in scope.removed_subjects:
        raise AlreadyRemoved("every row of this subject was already removed by an earlier "
                             "request")
    if not mask.any():
        # no subject id: a reason is stored in the ledger and shown in Prefect artifacts
        raise ForgetSetError("unknown subject in this data version (never in it, or its rows "
                             "were removed by an earlier request)")
    return mask


def _class(req: ForgetRequest, scope: Scope) -> np.ndarray:
    m = scope.manifest
    n = scope.num_classes if scope.num_classes is not None else int(m.labels.max()) + 1
    if not 0 <= int(req.label) < n:  # type: ignore[arg-type]
        raise ForgetSetError(f"class {req.label} is outside the label space 0..{n - 1}")
    mask = (m.labels == req.label) & (m.split != "test")
    if not (mask & (m.split == "train")).any():
        raise ForgetSetError(f"class {req.label} has no training rows left in this data version:"
                             " an earlier request removed them (`forgetflow request list` shows"
                             " which, and whether it is done)")
    return mask


def _backdoor(req: ForgetRequest, scope: Scope) -> np.ndarray:
    from forgetflow.core.triggers import carries_trigger

    m, images = scope.manifest, scope.train_images
    if images is None:
        raise ForgetSetError("a backdoor request needs the training images to scan")
    train_rows = np.flatnonzero(m.split == "train")
    if len(train_rows) != len(images):
        raise ForgetSetError("training images do not match the manifest's train split")
    req.trigger.check(tuple(images.shape[1:]), scope.num_classes or 1 << 30)  # type: ignore
    hits = carries_trigger(images, req.trigger)
    if scope.train_labels is not None:
        target = req.trigger.target  # type: ignore[union-attr]
        _check_poison_labels(scope.train_labels.numpy()[hits], target)
    matched = train_rows[hits]
    mask = np.zeros(len(m), dtype=bool)
    mask[matched] = True
    return mask


MIN_TARGET_SHARE = 0.5  # of the rows carrying a trigger that must bear its target label


def _check_poison_labels(labels: np.ndarray, target: int) -> None:
    """Poisoned rows were trained with the target label. If most rows that carry the pattern
    bear other labels, the target is wrong (the attack-success check would then measure the
    wrong class and pass a model that did nothing) or the pattern matches clean images."""
    if len(labels) == 0:
        return
    share = float(np.mean(labels == target))
    if share < MIN_TARGET_SHARE:
        values, counts = np.unique(labels, return_counts=True)
        common = int(values[counts.argmax()])
        raise ForgetSetError(
            f"{len(labels)} training rows carry this trigger but only {share:.0%} are labelled "
            f"with its target {target} (most: {common}, {counts.max() / len(labels):.0%}); "
            "poisoned rows bear the target label, so the target is wrong or the pattern also "
            "matches clean images")


def _trigger_spec(raw: dict[str, Any]) -> TriggerSpec:
    from forgetflow.core.triggers import TriggerSpec

    return TriggerSpec.from_dict(raw)


@dataclass(frozen=True)
class KindRule:
    """One request kind: its selector field, the ledger payload, and its row selector."""

    selector: str                                   # the DeletionRequest/ForgetRequest field
    select: Callable[[ForgetRequest, Scope], np.ndarray]
    payload: Callable[[Any], dict[str, Any]]        # selector value → what the ledger stores
    given: Callable[[Any], bool] = lambda v: v is not None
    decode: Callable[[Any], Any] = lambda v: v      # stored value → ForgetRequest field
    needs_pixels: bool = False                      # selecting reads the training images


KINDS: dict[str, KindRule] = {
    # sample ids are stored one row each by the ledger, so the payload only counts them
    "samples": KindRule("ids", _samples, lambda ids: {"count": len(ids)}, given=bool,
                        decode=tuple),
    "subject": KindRule("subject", _subject, lambda s: {"subject": s}, given=bool),
    "class": KindRule("label", _class, lambda k: {"label": k}),
    "backdoor": KindRule("trigger", _backdoor, lambda t: {"trigger": t},
                         decode=_trigger_spec, needs_pixels=True),
}


@dataclass(frozen=True)
class ForgetSelection:
    """`forget_ids`: training samples the model must unlearn. `drop_ids`: every row the next
    data version removes (a subject's or a sample's third-party/test rows go too)."""

    forget_ids: np.ndarray
    drop_ids: np.ndarray
    per_request: list[int] = field(default_factory=list)


def select(request: ForgetRequest, manifest: Manifest,
           train_images: torch.Tensor | None = None, num_classes: int | None = None,
           removed: frozenset[str] = frozenset(),
           removed_subjects: frozenset[str] = frozenset(),
           train_labels: torch.Tensor | None = None) -> np.ndarray:
    """Boolean mask over the manifest rows the request names (all splits); `removed` /
    `removed_subjects`: ids and subjects earlier requests removed (AlreadyRemoved when a
    request names nothing else); `train_labels`, the labels trained on, let a backdoor request
    check its target against the rows carrying its trigger."""
    return KINDS[request.kind].select(request, Scope(manifest, train_images, num_classes,
                                                     removed, removed_subjects, train_labels))


def check_selection(requests: Sequence[ForgetRequest], masks: Sequence[np.ndarray],
                    manifest: Manifest) -> ForgetSelection:
    """The union of already-computed masks, checked so the result is a sane forget set."""
    if not requests:
        raise ForgetSetError("no requests to extract a forget set from")
    drop = np.logical_or.reduce(masks)
    is_train = manifest.split == "train"
    forget = drop & is_train
    if not forget.any():
        raise ForgetSetError("the forget set is empty: no named sample is in the training split")
    if forget.sum() == is_train.sum():
        raise ForgetSetError("the request would forget the entire training set")
    class_requests = {int(r.label) for r in requests if r.kind == "class"}  # type: ignore
    remaining = set(np.unique(manifest.labels[is_train & ~forget]).tolist())
    emptied = set(np.unique(manifest.labels[is_train]).tolist()) - remaining - class_requests
    if emptied:
        raise ForgetSetError(
            f"the request would leave class(es) {sorted(emptied)} with no training samples; "
            "submit a class request to forget a whole class"
        )
    if len(remaining) < 2:
        raise ForgetSetError(f"the request would leave {len(remaining)} class(es) with training "
                             "samples; a classifier needs at least two")
    return ForgetSelection(np.sort(manifest.ids[forget]), np.sort(manifest.ids[drop]),
                           [int((m & is_train).sum()) for m in masks])


def extract(requests: Sequence[ForgetRequest], manifest: Manifest,
            train_images: torch.Tensor | None = None, num_classes: int | None = None,
            removed: frozenset[str] = frozenset(),
            removed_subjects: frozenset[str] = frozenset(),
            train_labels: torch.Tensor | None = None) -> ForgetSelection:
    """Union of all requests' selections, checked so the result is a sane forget set."""
    masks = [select(r, manifest, train_images, num_classes, removed, removed_subjects,
                    train_labels) for r in requests]
    return check_selection(requests, masks, manifest)


def precision_recall(found: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Extraction quality against known poisoned ids."""
    found_set, truth_set = set(found.tolist()), set(truth.tolist())
    hits = len(found_set & truth_set)
    precision = hits / len(found_set) if found_set else 0.0
    recall = hits / len(truth_set) if truth_set else 1.0
    return precision, recall
