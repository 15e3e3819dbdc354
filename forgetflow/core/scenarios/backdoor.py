"""Backdoor: the rows a trigger poisoned go, and the trigger must stop working: stamped
inputs get what clean unseen inputs get, and re-implanting it is no easier than a new one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forgetflow.core.scenarios.base import (
    DepthCheck,
    ForgetTarget,
    OutputCheck,
    Scenario,
)

if TYPE_CHECKING:
    import torch

    from forgetflow.core.data.tensors import ImageSet
    from forgetflow.core.matching import MatchTargets, OriginalOutputs, StopScores
    from forgetflow.core.params import DepthGateParams, GateParams


class Backdoor(Scenario):
    name = "backdoor"
    labels_are_true = False  # the forget rows carry the poisoned target label
    takes = "trigger"
    depth_check_name = "reimplant_gap"

    def reference(self, target: ForgetTarget, pool: ImageSet) -> ImageSet:
        """Clean unseen rows outside the target class."""
        return pool.where(pool.labels.numpy() != target.trigger.target)  # type: ignore

    def match_targets(self, target: ForgetTarget, original: OriginalOutputs) -> MatchTargets:
        """Triggered rows must look like clean unseen non-target rows: the original's output
        on each row with the trigger patch painted over, target class removed (§4)."""
        import torch

        from forgetflow.core.matching import REFERENCE_CAP, inpaint_trigger, soft_targets

        spec, pool = target.trigger, target.third_party
        ref = original.subsample(self.reference(target, pool), REFERENCE_CAP)
        r, c = spec.origin(pool.images.shape[2], pool.images.shape[3])  # type: ignore
        fill = pool.images[:, :, r: r + spec.size, c: c + spec.size].float().mean(0)  # type: ignore
        clean_look = inpaint_trigger(target.forget.images, spec,  # type: ignore[arg-type]
                                     fill.round().to(torch.uint8))
        forget_logits = original.logits(clean_look, target.forget.labels)
        ref_logits = original.logits(ref.images, ref.labels) if len(ref) else None
        return soft_targets(forget_logits, int(spec.target), ref_logits)  # type: ignore

    def stop_z(self, target: ForgetTarget, scores: StopScores) -> float:
        """Triggered inputs (stamped unseen rows, and the forget rows) hit the target no more
        often than the same unseen rows do clean."""
        from forgetflow.core.matching import count, excess_z

        k = target.trigger.target  # type: ignore[union-attr]
        clean = scores.labels_unseen != k
        base = count(scores.pred_unseen[clean] == k)
        stamped = scores.stamped_pred(clean) == k
        return max(excess_z(*count(stamped), *base),
                   excess_z(*count(scores.pred_forget == k), *base))

    def output_check(self, target: ForgetTarget, gate: GateParams) -> OutputCheck:
        return OutputCheck("asr", gate.max_asr)

    def depth_check(self, model: torch.nn.Module, parent: torch.nn.Module,
                    target: ForgetTarget, retain: ImageSet, test: ImageSet,
                    unseen: ImageSet, cfg: DepthGateParams, seed: int) -> DepthCheck:
        from forgetflow.core.depth_gate import backdoor_depth

        res = backdoor_depth(model, target.trigger, unseen, retain, test, cfg,  # type: ignore
                             seed)
        return DepthCheck(res, cfg.max_reimplant_gap, "max", (
            f"ASR after re-implanting: removed trigger {res.forgotten:.1%}, never-seen "
            f"control {res.control:.1%}; the removed trigger re-implants no faster than a "
            f"never-seen one"))


BACKDOOR = Backdoor()
