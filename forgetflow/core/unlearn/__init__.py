"""Unlearning methods behind one registry: `create_unlearner(name, **cfg)`."""

from forgetflow.core.unlearn.base import (
    Unlearner,
    UnlearnTask,
    create_unlearner,
    list_unlearners,
    register_unlearner,
)

__all__ = ["UnlearnTask", "Unlearner", "create_unlearner", "list_unlearners", "register_unlearner"]
