"""Tainted versions and their retention.

A registered version is *tainted* when its data version still holds rows of a request that is
`unlearned` or `done`: data versions only move forward and the exclusion manifest only grows,
so a version built on data vK holds the rows of every such request removed in a data version
after vK. Tainted versions carry `forgetflow.tainted=true`, the batch that tainted them and
when; no alias may move onto one (`Registry.set_alias` and `promote` refuse). Once no alias has
pointed at one for `retention.tainted_days`, its weights and artifacts are deleted from the
artifact store, leaving a tombstone: the registry version with its tags (lineage, weights
sha256), run params and metrics, so lineage and receipts stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.registry import (
    ALIAS_LEFT_AT,
    TAINTED,
    TAINTED_AT,
    TAINTED_BY,
    TOMBSTONE,
    ModelRef,
    Registry,
    RegistryError,
)
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.params import Params
from forgetflow.pipeline.serving import data_number


class TaintedVersion(RegistryError):
    """An alias move onto a version that still holds rows of an unlearned or done request."""


@dataclass(frozen=True)
class Taint:
    """Why a version is tainted: the first batch whose rows it holds, and the requests."""

    batch_id: str
    requests: tuple[int, ...]
    done: tuple[int, ...]


def removals(ledger: Ledger, name: str) -> list[tuple[int, str, int, str]]:
    """(data version number that removed the rows, batch, request, status) of every unlearned
    or done request of `name`, oldest removal first."""
    batches = {b["id"]: b for b in ledger.batches(name)}
    out = [(data_number((batches.get(r.batch_id) or {}).get("data_version")), r.batch_id,
            r.id, r.status)
           for r in ledger.list(model_name=name)
           if r.status in ("unlearned", "done") and r.batch_id]
    return sorted(x for x in out if x[0] > 0)


def taints(ledger: Ledger, versions: list[ModelRef], name: str) -> dict[str, Taint]:
    """version → Taint, for every version whose data holds rows of an unlearned/done request."""
    removed, out = removals(ledger, name), {}
    for ref in versions:
        held = [x for x in removed if x[0] > data_number(ref.tag("data_version"))]
        if held:
            out[ref.version] = Taint(held[0][1], tuple(x[2] for x in held),
                                     tuple(x[2] for x in held if x[3] == "done"))
    return out


def refuse_tainted(ledger: Ledger, registry: Registry, name: str, version: str) -> None:
    """Raise TaintedVersion when `version` holds rows of an unlearned or done request (read
    from the ledger, so a version not yet tagged is refused too)."""
    found = taints(ledger, [registry.ref(name, version)], name).get(version)
    if found is not None:
        raise TaintedVersion(
            f"{name} v{version} is tainted: its data still holds rows of {len(found.requests)} "
            f"unlearned or done request(s), first removed by batch {found.batch_id}; no alias "
            "may point at it")


def _since(ref: ModelRef) -> datetime:
    """Retention's clock: when the version was tainted or lost its last alias, the later."""
    stamps = [ref.tag(TAINTED_AT) or "", ref.tag(ALIAS_LEFT_AT) or ""]
    return max(datetime.fromisoformat(s) for s in stamps if s) if any(stamps) else \
        datetime.now(UTC)


def expired(ref: ModelRef, days: float, now: datetime) -> bool:
    """A tainted version with no alias whose retention time is over (tombstones excluded)."""
    return (ref.tag(TAINTED) == "true" and not ref.aliases and not ref.tag(TOMBSTONE)
            and _since(ref) + timedelta(days=days) <= now)


def open_parents(ledger: Ledger, name: str) -> set[str]:
    """Parents of processing batches: retention keeps them, a resume may load them."""
    return {str(b.get("parent_version")) for b in ledger.batches(name)
            if b.get("status") == "processing"}


def sweep(registry: Registry, ledger: Ledger, name: str, params: Params,
          now: datetime | None = None) -> dict[str, Any]:
    """Tag newly tainted versions; drop the non-serving aliases left on versions holding rows
    of done requests (none may point there; a serving one is the audit's to report, not ours
    to take down); delete the weights of tainted versions past retention, except a parent an
    open batch may still load. Idempotent: runs at the end of every batch run and promotion."""
    if not registry.model_exists(name):
        return {"tainted": [], "aliases_removed": [], "purged": []}
    now = now or datetime.now(UTC)
    stamp = now.isoformat(timespec="seconds")  # never later than `now`: see expired()
    refs = {r.version: r for r in registry.versions(name)}  # tags and aliases, read once
    found = taints(ledger, list(refs.values()), name)
    tainted, dropped, purged = [], [], []
    for version, taint in found.items():
        ref = refs[version]
        if ref.tag(TAINTED) != "true":
            registry.set_tags(ref, {TAINTED: "true", TAINTED_BY: taint.batch_id,
                                    TAINTED_AT: stamp})
            tainted.append(version)
        kept = params.registry.serving_aliases
        for alias in [a for a in ref.aliases if a not in kept] if taint.done else []:
            registry.delete_alias(name, alias, at=stamp)
            dropped.append(f"{alias}→v{version}")
    busy = open_parents(ledger, name)
    days = params.retention.tainted_days
    for ref in registry.versions(name):
        if ref.version in found and ref.version not in busy and expired(ref, days, now):
            registry.purge(ref)
            purged.append(ref.version)
    return {"tainted": tainted, "aliases_removed": dropped, "purged": purged}


class BatchOpen(RuntimeError):
    """`data gc` while a batch is open: resuming it reads data gc would purge."""


def gc_keep_from(ws: Workspace, name: str) -> str | None:
    """The oldest data version `data gc` must keep: that of any aliased model version (a
    champion or challenger parents the next batch, which reads the data it was built on).
    Raises BatchOpen while a batch of `name` is processing."""
    ledger = Ledger.open(ws.ledger_url)
    live = ledger.live_batch(name)
    if live is not None:
        raise BatchOpen(f"batch {live['batch_id']} is open: run `data gc` after it ends (resuming "
                        "it reads its parent data)")
    registry = Registry(ws)
    if not registry.model_exists(name):
        return None
    numbers = [data_number(r.tag("data_version")) for r in registry.versions(name) if r.aliases]
    return f"v{min(numbers)}" if numbers and min(numbers) > 0 else None
