"""Planning one deletion batch: which requests stand, which rows go, and how the forget set
splits into unlearning stages (one per scenario the batch mixes)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from forgetflow.core.data.manifest import Manifest
from forgetflow.core.data.tensors import DataBundle, ImageSet
from forgetflow.core.forget import (
    AlreadyRemoved,
    ForgetRequest,
    ForgetSelection,
    ForgetSetError,
    check_selection,
    select,
)
from forgetflow.core.ids import isin_ids
from forgetflow.core.scenarios import BACKDOOR, CLASS, SAMPLES, ForgetTarget


@dataclass
class BatchPlan:
    """Requests that stand (with the train ids each selects) and those rejected, with why."""

    accepted: dict[int, ForgetRequest]
    rejected: dict[int, str]
    selection: ForgetSelection | None
    train_ids_of: dict[int, set[str]] = field(default_factory=dict)
    drop_ids_of: dict[int, set[str]] = field(default_factory=dict)
    already_removed: dict[int, str] = field(default_factory=dict)  # every row removed before
    # class/backdoor requests of failed earlier batches whose rows left the data but are
    # still in the parent model: this batch forgets them too, each by its own scenario
    inherited: dict[int, ForgetRequest] = field(default_factory=dict)
    inherited_ids_of: dict[int, set[str]] = field(default_factory=dict)

    def request_of(self) -> dict[str, str]:
        """Dropped id → the request id(s) naming it (`;`-joined), for the exclusion manifest."""
        owners: dict[str, list[str]] = {}
        for rid, ids in self.drop_ids_of.items():
            for sid in ids:
                owners.setdefault(sid, []).append(str(rid))
        return {sid: ";".join(r) for sid, r in owners.items()}


def plan_batch(requests: dict[int, ForgetRequest], manifest: Manifest,
               bundle: DataBundle, removed: frozenset[str] = frozenset(),
               removed_subjects: frozenset[str] = frozenset()) -> BatchPlan:
    """Select each request's rows once, check each alone, then the union. `removed` /
    `removed_subjects`: what earlier requests removed (a request naming only that is
    `already_removed`)."""
    accepted, rejected, masks, already = {}, {}, {}, {}
    train_of, drop_of = {}, {}
    is_train = manifest.split == "train"
    for rid, req in requests.items():
        try:
            mask = select(req, manifest, bundle.train.images, bundle.num_classes, removed,
                          removed_subjects, bundle.train.labels)
            check_selection([req], [mask], manifest)
        except AlreadyRemoved as exc:
            already[rid] = str(exc)
            continue
        except ForgetSetError as exc:
            rejected[rid] = str(exc)
            continue
        accepted[rid], masks[rid] = req, mask
        train_of[rid] = set(manifest.ids[mask & is_train].tolist())
        drop_of[rid] = set(manifest.ids[mask].tolist())
    selection = None
    if accepted:
        try:
            selection = check_selection(list(accepted.values()), list(masks.values()), manifest)
        except ForgetSetError:
            selection = _admit_in_order(accepted, masks, manifest, rejected)
            train_of = {rid: ids for rid, ids in train_of.items() if rid in accepted}
            drop_of = {rid: ids for rid, ids in drop_of.items() if rid in accepted}
    return BatchPlan(accepted, rejected, selection, train_of, drop_of, already)


def _admit_in_order(accepted: dict[int, ForgetRequest], masks: dict[int, np.ndarray],
                    manifest: Manifest, rejected: dict[int, str]) -> ForgetSelection | None:
    """The union broke a rule no request breaks alone (two subjects emptying a class):
    admit requests oldest first while the union stays sane, so the first ones are honoured
    and only those that would break it are refused (naming the requests they collide with).
    Mutates `accepted` and `rejected`."""
    admitted: list[int] = []
    selection = None
    is_train = manifest.split == "train"
    for rid in sorted(accepted):
        try:
            selection = check_selection([accepted[r] for r in [*admitted, rid]],
                                        [masks[r] for r in [*admitted, rid]], manifest)
            admitted.append(rid)
        except ForgetSetError as exc:
            mine = set(manifest.labels[masks[rid] & is_train].tolist())
            shared = [r for r in admitted
                      if mine & set(manifest.labels[masks[r] & is_train].tolist())]
            rejected[rid] = (f"together with request(s) {', '.join(map(str, shared or admitted))}"
                             f" of the same batch: {exc}")
    for rid in [r for r in accepted if r not in admitted]:
        del accepted[rid]
    return selection if admitted else None


def adopt_rescanned(plan: BatchPlan, requests: dict[int, ForgetRequest],
                    rescanned: Manifest) -> list[int]:
    """Sample and subject requests that named only rows a re-scan dropped (their files were
    deleted) while the parent model still holds them (`rescanned`: those rows of the parent's
    manifest). This batch forgets those rows in any case (every row the parent saw that the
    new version lacks), so each such request becomes this batch's, with those rows as its
    own, and the new version's exclusions name it. Returns the ids."""
    gone = set(rescanned.ids.tolist())
    adopted = {rid: _rescanned_rows(requests[rid], rescanned, gone)
               for rid in sorted(plan.already_removed)}
    adopted = {rid: own for rid, own in adopted.items() if own}
    if not adopted:
        return []
    for rid, own in adopted.items():
        del plan.already_removed[rid]
        plan.accepted[rid] = requests[rid]
        plan.train_ids_of[rid] = plan.drop_ids_of[rid] = own
    extra = set().union(*adopted.values())
    old = plan.selection or ForgetSelection(np.asarray([], dtype=object),
                                            np.asarray([], dtype=object))
    plan.selection = ForgetSelection(
        np.asarray(sorted(set(old.forget_ids.tolist()) | extra), dtype=object),
        np.asarray(sorted(set(old.drop_ids.tolist()) | extra), dtype=object),
        [*old.per_request, *(len(own) for own in adopted.values())])
    return sorted(adopted)


def _rescanned_rows(req: ForgetRequest, rescanned: Manifest, gone: set[str]) -> set[str]:
    if req.kind == "samples":
        return set(req.ids) & gone
    if req.kind == "subject":
        return set(rescanned.ids[rescanned.subject == req.subject].tolist())
    return set()


@dataclass(frozen=True)
class Stage:
    """One unlearning pass of a batch: its name in records and what it forgets."""

    name: str
    target: ForgetTarget


def concat(sets: list[ImageSet]) -> ImageSet:
    return ImageSet(torch.cat([s.images for s in sets]), torch.cat([s.labels for s in sets]),
                    np.concatenate([s.ids for s in sets]))


def without_ids(bundle: DataBundle, ids: np.ndarray) -> DataBundle:
    """The bundle of the next data version, cut from this one instead of reloaded."""
    def cut(s: ImageSet) -> ImageSet:
        return s.where(~isin_ids(s.ids, ids))

    return DataBundle(cut(bundle.train), cut(bundle.third_party), cut(bundle.test),
                      bundle.classes, bundle.source,
                      None if bundle.holdout is None else cut(bundle.holdout))


def forget_rows(parent_bundle: DataBundle, bundle: DataBundle) -> ImageSet:
    """Every training row the parent model saw that the new version no longer has: this
    batch's rows plus any a failed earlier batch dropped from the data but not the model."""
    kept = set(bundle.train.ids.tolist())
    return parent_bundle.train.where(~isin_ids(parent_bundle.train.ids, kept))


def forgotten_classes(plan: BatchPlan) -> list[int]:
    """This batch's classes and those of failed earlier batches the parent still holds."""
    requests = [*plan.accepted.values(), *plan.inherited.values()]
    return sorted({int(r.label) for r in requests if r.kind == "class"})


def class_reference_pool(third_party: ImageSet, parent_third_party: ImageSet,
                         classes: list[int]) -> ImageSet:
    """The pool class stages read: this batch's, plus the parent version's rows of inherited
    forgotten classes (a failed batch dropped them from the data, and unseen samples of a
    class exist nowhere else; this batch's own class rows are read the same way)."""
    extra = parent_third_party.where(np.isin(parent_third_party.labels.numpy(), classes)
                                     & ~isin_ids(parent_third_party.ids, third_party.ids))
    return concat([third_party, extra]) if len(extra) else third_party


def plan_stages(plan: BatchPlan, forget: ImageSet, third_party: ImageSet,
                kept_third_party: ImageSet) -> list[Stage]:
    """Backdoor rows first, then each forgotten class, then everything else as `samples`
    (requests inherited from failed batches included, each by its own scenario).
    Class and backdoor stages read the pool before this batch's drop (a forgotten class has
    unseen samples only there); the samples stage matches the pool that remains, without
    forgotten classes."""
    left = np.ones(len(forget), dtype=bool)
    stages: list[Stage] = []
    owners = [(rid, req, plan.train_ids_of[rid]) for rid, req in plan.accepted.items()]
    owners += [(rid, req, plan.inherited_ids_of.get(rid, set()))
               for rid, req in plan.inherited.items()]
    for rid, req, ids in owners:
        if req.kind == "backdoor":
            mask = left & isin_ids(forget.ids, ids)
            if mask.any():
                stages.append(Stage(f"backdoor-{rid}", ForgetTarget(
                    BACKDOOR, forget.where(mask), third_party, trigger=req.trigger)))
                left &= ~mask
    classes = forgotten_classes(plan)
    for k in classes:
        mask = left & (forget.labels.numpy() == k)
        if mask.any():
            stages.append(Stage(f"class-{k}", ForgetTarget(CLASS, forget.where(mask),
                                                           third_party, forget_class=k)))
            left &= ~mask
    if left.any():
        pool = kept_third_party.where(~np.isin(kept_third_party.labels.numpy(), classes))
        stages.append(Stage("samples", ForgetTarget(SAMPLES, forget.where(left), pool)))
    return stages
