"""What a kind of forgetting means, in one object: the `Scenario` hooks every layer calls
instead of comparing scenario names, and `ForgetTarget`, the one record of what a pass must
forget (scenario, rows, the unseen pool it is matched against, class, trigger).

A scenario module (samples.py, forget_class.py, backdoor.py) subclasses `Scenario` and
registers one instance; request kinds map onto scenarios in core/forget.py. This module stays
free of torch so that request validation can name scenarios cheaply; hooks import what they
compute with.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np
    import torch

    from forgetflow.core.data.tensors import ImageSet
    from forgetflow.core.depth_gate import DepthResult
    from forgetflow.core.matching import MatchTargets, OriginalOutputs, StopScores
    from forgetflow.core.params import DepthGateParams, GateParams
    from forgetflow.core.triggers import TriggerSpec


class ScenarioError(ValueError):
    """A target does not carry what its scenario needs, or a scenario name is unknown."""


@dataclass(frozen=True)
class OutputCheck:
    """One gate check on the unlearned model's outputs (docs/design.md §7)."""

    metric: str                  # the evaluation metric read (forget_acc, asr, ...)
    limit: float                 # its maximum
    not_gated: str = ""          # why the check only records (too little data for power)


@dataclass(frozen=True)
class DepthCheck:
    """One depth check's outcome before the gate applies its noise allowance."""

    result: DepthResult
    limit: float
    bound: str                   # "max": value must stay below; "min": must reach
    note: str


class Scenario:
    """A kind of forgetting. Subclasses set `name` and override the hooks that differ."""

    name: ClassVar[str] = ""
    # forget rows carry their true labels (False for backdoors: the labels were poisoned)
    labels_are_true: ClassVar[bool] = True
    # the forget rows are members to hide among unseen rows (membership tests and figures)
    hides_membership: ClassVar[bool] = False
    # the gate's depth check, by its name in records and params (gate.depth)
    depth_check_name: ClassVar[str] = ""
    # the ForgetTarget field this scenario names what it forgets by, beside the rows
    takes: ClassVar[str | None] = None

    def __repr__(self) -> str:
        return f"<scenario {self.name}>"

    def __str__(self) -> str:
        return self.name

    def target(self, forget: ImageSet, pool: ImageSet, forget_class: int | None = None,
               trigger: TriggerSpec | None = None) -> ForgetTarget:
        """A target of this scenario, keeping of `forget_class` / `trigger` what it takes."""
        return ForgetTarget(self, forget, pool,
                            forget_class if self.takes == "forget_class" else None,
                            trigger if self.takes == "trigger" else None)

    def check(self, target: ForgetTarget) -> None:
        """Raise ScenarioError when `target` lacks what it takes, or carries what it does not."""
        for name in ("forget_class", "trigger"):
            given = getattr(target, name) is not None
            if given != (name == self.takes):
                raise ScenarioError(
                    f"a {self.name} target {'takes no' if given else 'needs a'} {name}")

    # -- evaluation ---------------------------------------------------------------------
    def reference(self, target: ForgetTarget, pool: ImageSet) -> ImageSet:
        """Unseen rows the forget rows should look like after unlearning."""
        return pool

    def kept_test(self, target: ForgetTarget, test_labels: np.ndarray) -> np.ndarray | None:
        """Test rows whose accuracy still means something (None: all of them)."""
        return None

    def probe(self, model: torch.nn.Module, target: ForgetTarget, holdout: ImageSet,
              seed: int) -> float | None:
        """A linear probe on penultimate features (None where it says nothing)."""
        return None

    # -- methods --------------------------------------------------------------------------
    def anchor(self, target: ForgetTarget) -> ImageSet:
        """Unseen rows whose outputs a method must keep as the original gave them."""
        return target.third_party

    def anchor_targets(self, target: ForgetTarget, logits: torch.Tensor) -> torch.Tensor:
        """What the anchor rows' outputs must stay: the original's distribution on them."""
        import torch.nn.functional as F

        return F.softmax(logits, 1)

    def rewind_target(self, target: ForgetTarget, error_of: Any) -> float | None:
        """The forget error a model that never saw the rows would have (None: no rewind)."""
        return None

    def match_targets(self, target: ForgetTarget, original: OriginalOutputs) -> MatchTargets:
        """dm's per-row targets, from the original model's outputs (docs/method.md §2-§4)."""
        raise NotImplementedError

    def stop_z(self, target: ForgetTarget, scores: StopScores) -> float:
        """dm's stopping statistic: how far the forget rows still stand out (§5)."""
        raise NotImplementedError

    # -- gate -----------------------------------------------------------------------------
    def output_check(self, target: ForgetTarget, gate: GateParams) -> OutputCheck:
        raise NotImplementedError

    def depth_check(self, model: torch.nn.Module, parent: torch.nn.Module,
                    target: ForgetTarget, retain: ImageSet, test: ImageSet,
                    unseen: ImageSet, cfg: DepthGateParams, seed: int) -> DepthCheck:
        raise NotImplementedError


@dataclass(frozen=True)
class ForgetTarget:
    """What one unlearning pass forgets: the rows (as trained on), the unseen pool they are
    matched against, and the class or trigger the scenario names."""

    scenario: Scenario
    forget: ImageSet
    third_party: ImageSet
    forget_class: int | None = None
    trigger: TriggerSpec | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.scenario, Scenario):
            raise ScenarioError(f"expected a Scenario, got {self.scenario!r}")
        self.scenario.check(self)

    def with_pool(self, pool: ImageSet) -> ForgetTarget:
        """The same target, compared against another unseen pool (e.g. the holdout)."""
        return replace(self, third_party=pool)

    def with_rows(self, forget: ImageSet) -> ForgetTarget:
        return replace(self, forget=forget)
