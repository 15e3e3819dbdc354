"""Flow `promote`: move `champion` to a version that passed the gate, never backwards."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from forgetflow.adapters.registry import Registry, RegistryError
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.params import load_params


class PromotionRefused(RegistryError):
    """The candidate failed the gate, or was trained on data older than the champion's."""


def check_promotable(registry: Registry, name: str, version: str | None) -> tuple[str, str]:
    """(candidate, current champion) after the rules: gate passed, and the candidate's data
    version is not older than the champion's (an older one still holds forgotten ids)."""
    if not registry.model_exists(name):
        raise RegistryError(f"no registered model named {name!r}")
    candidate = registry.ref(name, version) if version else registry.alias(name, "challenger")
    if candidate is None:
        raise PromotionRefused(f"model {name!r} has no challenger to promote; pass --version")
    champion = registry.alias(name, "champion")
    if candidate.tag("gate") != "passed":
        raise PromotionRefused(f"{name} v{candidate.version} did not pass the gate "
                               f"(gate={candidate.tag('gate')!r}); refusing to promote")
    if champion is not None:
        def number(tag: str | None) -> int:
            return int((tag or "v0").lstrip("v") or 0)

        if number(candidate.tag("data_version")) < number(champion.tag("data_version")):
            raise PromotionRefused(
                f"{name} v{candidate.version} was built on data {candidate.tag('data_version')}"
                f", older than the champion's {champion.tag('data_version')}: it may still "
                "carry forgotten samples")
    return candidate.version, champion.version if champion else ""


@flow(name="promote", log_prints=False)
def promote_flow(model_name: str | None = None, version: str | None = None,
                 params_file: str | None = None) -> dict[str, Any]:
    """Runbook: check the candidate (default: the challenger), move champion, clear the
    challenger alias once it is the champion."""
    name = model_name or load_params(params_file).registry.model_name
    registry = Registry(Workspace.from_env())
    candidate, previous = check_promotable(registry, name, version)
    registry.set_alias(name, "champion", candidate)
    challenger = registry.alias(name, "challenger")
    if challenger is not None and int(challenger.version) <= int(candidate):
        registry.delete_alias(name, "challenger")
    get_run_logger().info("champion of %s: v%s → v%s", name, previous or "-", candidate)
    return {"model_name": name, "champion": candidate, "previous_champion": previous or None}
