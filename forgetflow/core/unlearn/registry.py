"""Every built-in method, imported in this one place: each module registers its classes with
`register_unlearner` when imported. The package imports this module, so `create_unlearner`
always sees the whole set, and no method module imports the registry back (no cycle)."""

from __future__ import annotations

from forgetflow.core.unlearn import (  # noqa: F401  (imported for their registrations)
    baselines,
    baselines_sparse,
    dm,
    head,
    sanity,
    scrub,
)
from forgetflow.core.unlearn.base import _REGISTRY, Unlearner


def list_unlearners() -> list[str]:
    return sorted(_REGISTRY)


def create_unlearner(name: str, **cfg: object) -> Unlearner:
    if name not in _REGISTRY:
        raise ValueError(f"unknown unlearning method {name!r}; registered: {sorted(_REGISTRY)}")
    return _REGISTRY[name](**cfg)
