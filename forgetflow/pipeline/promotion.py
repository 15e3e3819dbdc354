"""Promotion rules: which version may become `champion`, and what a move completes.

Kept out of the flows so the CLI can refuse a bad promotion before Prefect starts, and so a
batch can promote its own challenger (`promote.auto`) with the same rules.
"""

from __future__ import annotations

from typing import Any

from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.registry import Registry, RegistryError
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.params import Params
from forgetflow.pipeline.serving import complete_served, data_number
from forgetflow.pipeline.taint import TaintedVersion, refuse_tainted, sweep


class PromotionRefused(RegistryError):
    """The candidate failed the gate, or was trained on data older than the champion's."""


def check_promotable(registry: Registry, name: str, version: str | None) -> tuple[str, str]:
    """(candidate, current champion) after the rules: gate passed, the candidate's data
    version is not older than the champion's (an older one still holds forgotten ids), and it
    holds no rows of an unlearned or done request (not tainted)."""
    if not registry.model_exists(name):
        raise RegistryError(f"no registered model named {name!r}")
    candidate = registry.ref(name, version) if version else registry.alias(name, "challenger")
    if candidate is None:
        raise PromotionRefused(f"model {name!r} has no challenger to promote; pass --version")
    champion = registry.alias(name, "champion")
    if candidate.tag("gate") != "passed":
        raise PromotionRefused(f"{name} v{candidate.version} did not pass the gate "
                               f"(gate={candidate.tag('gate')!r}); refusing to promote")
    if champion is not None and \
            data_number(candidate.tag("data_version")) < data_number(champion.tag("data_version")):
        raise PromotionRefused(
            f"{name} v{candidate.version} was built on data {candidate.tag('data_version')}, "
            f"older than the champion's {champion.tag('data_version')}: it may still carry "
            "forgotten samples")
    try:
        refuse_tainted(Ledger.open(registry.ws.ledger_url), registry, name, candidate.version)
    except TaintedVersion as exc:
        raise PromotionRefused(str(exc)) from exc
    return candidate.version, champion.version if champion else ""


def promote(ws: Workspace, name: str, version: str | None, params: Params) -> dict[str, Any]:
    """Move champion to the candidate, clear the challenger alias once it is the champion,
    complete every unlearned request no serving version holds any more, then apply retention
    to the versions that still hold their rows."""
    registry, serving_aliases = Registry(ws), params.registry.serving_aliases
    candidate, previous = check_promotable(registry, name, version)
    registry.set_alias(name, "champion", candidate)
    challenger = registry.alias(name, "challenger")
    if challenger is not None and int(challenger.version) <= int(candidate):
        registry.delete_alias(name, "challenger")
    return {"model_name": name, "champion": candidate, "previous_champion": previous or None,
            "completed_requests": complete_served(ws, name, serving_aliases),
            "retention": sweep(registry, Ledger.open(ws.ledger_url), name, params)}


def promote_passed(ws: Workspace, name: str, batches: list[dict[str, Any]],
                   params: Params) -> dict[str, Any] | None:
    """`promote.auto`: promote the newest gate-passed version of this run's batches (None:
    none passed); a refusal is returned as {"refused": why}, not raised."""
    passed = [b for b in batches if b.get("gate") == "passed"]
    if not passed:
        return None
    try:
        return promote(ws, name, passed[-1]["model_version"], params)
    except PromotionRefused as exc:
        return {"refused": str(exc)}
