"""Unlearning methods behind one registry: `create_unlearner(name, **cfg)`."""

from forgetflow.core.unlearn.base import Unlearner, UnlearnTask, register_unlearner
from forgetflow.core.unlearn.registry import create_unlearner, list_unlearners

__all__ = ["UnlearnTask", "Unlearner", "create_unlearner", "list_unlearners", "register_unlearner"]
