"""Planning one deletion batch: which requests stand, which rows go, and how the forget set
splits into unlearning stages (one per scenario the batch mixes)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from forgetflow.core.data.manifest import Manifest
from forgetflow.core.data.tensors import DataBundle, ImageSet
from forgetflow.core.forget import ForgetRequest, ForgetSelection, ForgetSetError, extract, select
from forgetflow.core.triggers import TriggerSpec


def isin_ids(ids: np.ndarray, others: object) -> np.ndarray:
    """Membership of sample ids, in O((n+m) log) time: numpy's isin compares object arrays
    pairwise, which takes minutes on Fashion-MNIST-sized manifests."""
    wanted = set(map(str, others))  # type: ignore[call-overload]
    return np.fromiter((str(i) in wanted for i in ids), dtype=bool, count=len(ids))


def forget_sha256(ids: np.ndarray | list[str]) -> str:
    """DESIGN §3 lineage hash: sha256 of the sorted ids joined by newlines."""
    return hashlib.sha256("\n".join(sorted(map(str, ids))).encode()).hexdigest()


@dataclass
class BatchPlan:
    """Requests that stand (with the train ids each selects) and those rejected, with why."""

    accepted: dict[int, ForgetRequest]
    rejected: dict[int, str]
    selection: ForgetSelection | None
    train_ids_of: dict[int, set[str]] = field(default_factory=dict)
    drop_ids_of: dict[int, set[str]] = field(default_factory=dict)

    def request_of(self) -> dict[str, str]:
        """Dropped id → the request id(s) naming it (`;`-joined), for the exclusion manifest."""
        owners: dict[str, list[str]] = {}
        for rid, ids in self.drop_ids_of.items():
            for sid in ids:
                owners.setdefault(sid, []).append(str(rid))
        return {sid: ";".join(r) for sid, r in owners.items()}


def plan_batch(requests: dict[int, ForgetRequest], manifest: Manifest,
               bundle: DataBundle) -> BatchPlan:
    """Check each request alone against the newest data version, then the union."""
    accepted, rejected = {}, {}
    train_of, drop_of = {}, {}
    is_train = manifest.split == "train"
    for rid, req in requests.items():
        try:
            extract([req], manifest, bundle.train.images, bundle.num_classes)
            mask = select(req, manifest, bundle.train.images, bundle.num_classes)
        except ForgetSetError as exc:
            rejected[rid] = str(exc)
            continue
        accepted[rid] = req
        train_of[rid] = set(manifest.ids[mask & is_train].tolist())
        drop_of[rid] = set(manifest.ids[mask].tolist())
    selection = None
    if accepted:
        try:
            selection = extract(list(accepted.values()), manifest, bundle.train.images,
                                bundle.num_classes)
        except ForgetSetError as exc:
            rejected.update({rid: f"batch as a whole: {exc}" for rid in accepted})
            accepted, train_of, drop_of = {}, {}, {}
    return BatchPlan(accepted, rejected, selection, train_of, drop_of)


@dataclass(frozen=True)
class Stage:
    """One unlearning pass: a scenario, its forget rows and the unseen pool it matches."""

    name: str
    scenario: str
    forget: ImageSet
    third_party: ImageSet
    forget_class: int | None = None
    trigger: TriggerSpec | None = None


def concat(sets: list[ImageSet]) -> ImageSet:
    return ImageSet(torch.cat([s.images for s in sets]), torch.cat([s.labels for s in sets]),
                    np.concatenate([s.ids for s in sets]))


def plan_stages(plan: BatchPlan, forget: ImageSet, third_party: ImageSet,
                kept_third_party: ImageSet) -> list[Stage]:
    """Backdoor rows first, then each forgotten class, then everything else as `samples`
    (which also carries ids a failed earlier batch dropped from the data but not the model).
    Class and backdoor stages read the pool before this batch's drop (a forgotten class has
    unseen samples only there); the samples stage matches the pool that remains, without
    forgotten classes."""
    left = np.ones(len(forget), dtype=bool)
    stages: list[Stage] = []
    for rid, req in plan.accepted.items():
        if req.kind == "backdoor":
            mask = left & isin_ids(forget.ids, plan.train_ids_of[rid])
            if mask.any():
                stages.append(Stage(f"backdoor-{rid}", "backdoor", forget.where(mask),
                                    third_party, trigger=req.trigger))
                left &= ~mask
    classes = sorted({int(r.label) for r in plan.accepted.values() if r.kind == "class"})
    for k in classes:
        mask = left & (forget.labels.numpy() == k)
        if mask.any():
            stages.append(Stage(f"class-{k}", "class", forget.where(mask), third_party,
                                forget_class=k))
            left &= ~mask
    if left.any():
        pool = kept_third_party.where(~np.isin(kept_third_party.labels.numpy(), classes))
        stages.append(Stage("samples", "samples", forget.where(left), pool))
    return stages


def forgotten_classes(plan: BatchPlan) -> list[int]:
    return sorted({int(r.label) for r in plan.accepted.values() if r.kind == "class"})
