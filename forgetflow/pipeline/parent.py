"""Which model a batch unlearns from."""

from __future__ import annotations

from forgetflow.adapters.registry import ModelRef, Registry, RegistryError


def parent_of(registry: Registry, name: str) -> ModelRef:
    """The newest gate-passed version, i.e. the challenger when it is newer than the champion
    (so an unpromoted batch is never undone)."""
    champion = registry.alias(name, "champion")
    if champion is None:
        raise RegistryError(f"model {name!r} has no champion: run `forgetflow train` first")
    challenger = registry.alias(name, "challenger")
    if challenger and int(challenger.version) > int(champion.version):
        return challenger
    return champion
