"""Sample-id set helpers shared by the data adapters and the batch planner."""

from __future__ import annotations

import hashlib

import numpy as np

MAX_TEXT = 200  # ids, subjects, keys and model names; longer input would only bloat errors
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # no control characters (tabs and newlines included)


def isin_ids(ids: np.ndarray, others: object) -> np.ndarray:
    """Membership of sample ids, in O((n+m) log) time: numpy's isin compares object arrays
    pairwise, which takes minutes on Fashion-MNIST-sized manifests."""
    wanted = set(map(str, others))  # type: ignore[call-overload]
    return np.fromiter((str(i) in wanted for i in ids), dtype=bool, count=len(ids))


def forget_sha256(ids: np.ndarray | list[str]) -> str:
    """docs/design.md §8 lineage hash: sha256 of the sorted ids joined by newlines."""
    return hashlib.sha256("\n".join(sorted(map(str, ids))).encode()).hexdigest()


def redacted_payload(payload: dict | None) -> dict | None:
    """A request's selector without personal data, for anything printed or stored beside it:
    a subject id becomes a digest prefix (enough to match against the ledger, not to read)."""
    if not payload or "subject" not in payload:
        return payload
    digest = hashlib.sha256(str(payload["subject"]).encode()).hexdigest()[:12]
    return {**{k: v for k, v in payload.items() if k != "subject"}, "subject_sha256": digest}
