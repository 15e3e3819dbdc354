"""Class: every row of one class goes, and the model must no longer know the class: its
rows get what a model that never learned the class gives them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forgetflow.core.scenarios.base import (
    DepthCheck,
    ForgetTarget,
    OutputCheck,
    Scenario,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

    from forgetflow.core.data.tensors import ImageSet
    from forgetflow.core.matching import MatchTargets, OriginalOutputs, StopScores
    from forgetflow.core.params import DepthGateParams, GateParams


class ForgetClass(Scenario):
    name = "class"
    takes = "forget_class"
    depth_check_name = "class_feature_drop"

    def reference(self, target: ForgetTarget, pool: ImageSet) -> ImageSet:
        """Unseen rows of the same class: what a model without the class makes of them."""
        return pool.where(pool.labels.numpy() == target.forget_class)

    def kept_test(self, target: ForgetTarget, test_labels: np.ndarray) -> np.ndarray | None:
        return test_labels != target.forget_class

    def probe(self, model: torch.nn.Module, target: ForgetTarget, holdout: ImageSet,
              seed: int) -> float | None:
        """The class vs the rest, both from the holdout split (no model saw them)."""
        from forgetflow.core.attacks import class_probe_acc

        return class_probe_acc(model, holdout, int(target.forget_class), seed)  # type: ignore

    def anchor(self, target: ForgetTarget) -> ImageSet:
        """Unseen rows of the other classes: their outputs must not move. A tiny source whose
        unseen rows all belong to the class (a few images a folder) anchors on those instead:
        their target is the original's output without the class, which is what they must
        become (an empty anchor crashed dm)."""
        pool = target.third_party
        others = pool.where(pool.labels.numpy() != target.forget_class)
        return others if len(others) else pool

    def anchor_targets(self, target: ForgetTarget, logits: torch.Tensor) -> torch.Tensor:
        """The original's distribution on the other classes' unseen rows, without the class:
        a model that never learned it puts that mass on the remaining classes (§3), so the
        anchor must not pull the class back in while the match term removes it."""
        from forgetflow.core.matching import masked_softmax

        return masked_softmax(logits, int(target.forget_class))  # type: ignore[arg-type]

    def rewind_target(self, target: ForgetTarget, error_of: Any) -> float | None:
        return 1.0  # a model that never learned the class gets every one of its rows wrong

    def match_targets(self, target: ForgetTarget, original: OriginalOutputs) -> MatchTargets:
        """The original's distribution without the class, as confident as on unseen rows of
        the class (§3)."""
        from forgetflow.core.matching import soft_targets

        k = int(target.forget_class)  # type: ignore[arg-type]
        ref = self.reference(target, target.third_party)
        ref_logits = original.logits(ref.images, ref.labels) if len(ref) else None
        return soft_targets(original.forget_logits(), k, ref_logits)

    def stop_z(self, target: ForgetTarget, scores: StopScores) -> float:
        """Forgotten: predicted k no more often than unseen rows of other classes are."""
        from forgetflow.core.matching import count, excess_z

        k = target.forget_class
        other = scores.labels_unseen != k
        return excess_z(*count(scores.pred_forget == k), *count(scores.pred_unseen[other] == k))

    def output_check(self, target: ForgetTarget, gate: GateParams) -> OutputCheck:
        return OutputCheck("forget_acc", gate.max_forget_acc_class)

    def depth_check(self, model: torch.nn.Module, parent: torch.nn.Module,
                    target: ForgetTarget, retain: ImageSet, test: ImageSet,
                    unseen: ImageSet, cfg: DepthGateParams, seed: int) -> DepthCheck:
        from forgetflow.core.depth_gate import class_depth

        k = int(target.forget_class)  # type: ignore[arg-type]
        res = class_depth(model, parent, k, target.forget, retain, unseen, cfg, seed)
        return DepthCheck(res, cfg.min_class_feature_drop, "min", (
            f"few-shot recall of class {k} from the features: {res.forgotten:.1%} vs the "
            f"parent's {res.control:.1%}; the class is harder to read from the features "
            f"than from the parent's, beyond the other classes"))


CLASS = ForgetClass()
