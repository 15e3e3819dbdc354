"""When a request is done: every serving alias points at a version built without its rows.

A batch leaves its requests `unlearned` (a gate-passed version without the rows is
registered); moving an alias (promotion) is what can make them `done`, and only then is the
signed receipt issued, naming the serving versions. Data versions only move forward and the
exclusion manifest only grows, so a version built on data version vN or later holds none of the
rows a batch dropped in vN.
"""

from __future__ import annotations

from collections import defaultdict

from forgetflow.adapters.datarepo import DataRepo, Exclusions
from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.registry import ModelRef, Registry
from forgetflow.adapters.workspace import Workspace
from forgetflow.pipeline.receipts import issue_receipts, receipt_key, removed_earlier_by


def data_number(tag: str | None) -> int:
    return int((tag or "v0").lstrip("v") or 0)


def serving_refs(registry: Registry, name: str, aliases: list[str]) -> dict[str, ModelRef]:
    """alias → the version it points at; an alias that points nowhere is left out."""
    return {a: ref for a in aliases if (ref := registry.alias(name, a)) is not None}


def complete_served(ws: Workspace, name: str, aliases: list[str]) -> list[int]:
    """Unlearned requests of `name` whose rows no serving version holds any more become done,
    each with a receipt naming the unlearned version and the serving ones. Returns their ids."""
    registry, ledger = Registry(ws), Ledger.open(ws.ledger_url)
    serving = serving_refs(registry, name, aliases)
    if len(serving) < len(aliases):
        return []
    by_version: dict[str, list[int]] = defaultdict(list)
    for view in ledger.list(status="unlearned", model_name=name):
        by_version[str(view.model_version)].append(view.id)
    done: list[int] = []
    repo, key = DataRepo(ws), receipt_key(ws)
    for version, rids in sorted(by_version.items(), key=lambda kv: int(kv[0])):
        ref = registry.ref(name, version)
        needed = data_number(ref.tag("data_version"))
        if all(data_number(s.tag("data_version")) >= needed for s in serving.values()):
            ledger.transition(rids, "done", receipts=issue_receipts(
                ledger, repo, registry, ref, serving, rids, key))
            done += rids
    return sorted(done)


def honour_already_removed(ws: Workspace, name: str, request_ids: list[int],
                           exclusions: Exclusions, aliases: list[str]) -> dict[int, str]:
    """Requests whose every row earlier requests already removed: `unlearned` by the newest
    version of those requests, then `done` with a receipt as soon as the serving aliases serve
    it (now, if they already do). Returns request id → why one cannot be honoured that way
    yet (the requests that removed its rows are not unlearned themselves): to be rejected."""
    ledger, refused = Ledger.open(ws.ledger_url), {}
    for rid in request_ids:
        by = removed_earlier_by(ledger, ledger.get(rid), exclusions)
        views = [ledger.get(r) for r in by]
        if not views:
            refused[rid] = ("every named row left the data when its source was re-scanned "
                            "(the files were deleted), and no request removed them: the next "
                            "batch forgets them with its own rows, which this request cannot "
                            "record")
            continue
        if any(v.status not in ("unlearned", "done") for v in views):
            refused[rid] = (f"every named row was already removed by request(s) {by}, which "
                            "are not unlearned yet: submit it again once they are")
            continue
        version = max((str(v.model_version) for v in views), key=int)
        ledger.transition([rid], "unlearned", model_version=version,
                          reason=f"every named row was already removed by request(s) {by}")
    complete_served(ws, name, aliases)
    return refused
