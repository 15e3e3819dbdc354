"""Samples: named rows (sample ids or a data subject's rows) must look like rows the model
never saw. Their classes stay; only membership must vanish."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forgetflow.core.scenarios.base import DepthCheck, ForgetTarget, OutputCheck, Scenario

if TYPE_CHECKING:
    import torch

    from forgetflow.core.data.tensors import ImageSet
    from forgetflow.core.matching import MatchTargets, OriginalOutputs, StopScores
    from forgetflow.core.params import DepthGateParams, GateParams


class Samples(Scenario):
    name = "samples"
    hides_membership = True
    depth_check_name = "relearn_gap"

    def probe(self, model: torch.nn.Module, target: ForgetTarget, holdout: ImageSet,
              seed: int) -> float | None:
        """Membership in the features: forget rows vs holdout rows."""
        from forgetflow.core.attacks import membership_probe_acc

        return membership_probe_acc(model, target.forget, holdout, seed)

    def rewind_target(self, target: ForgetTarget, error_of: Any) -> float | None:
        """The original's error on unseen rows: what it would get on rows it never saw."""
        return error_of(target.third_party) if len(target.third_party) else None

    def match_targets(self, target: ForgetTarget, original: OriginalOutputs) -> MatchTargets:
        """Per class, the forget rows' confidence logits mapped onto the unseen rows' (§2)."""
        import torch

        from forgetflow.core.matching import (
            REFERENCE_CAP,
            MatchTargets,
            confidence_logit,
            quantile_targets,
        )

        ref = original.subsample(target.third_party, REFERENCE_CAP)
        ref_phi = confidence_logit(original.logits(ref.images, ref.labels), ref.labels)
        labels = target.forget.labels
        forget_phi = confidence_logit(original.forget_logits(), labels)
        phi = quantile_targets(forget_phi.numpy(), labels.numpy(), ref_phi.numpy(),
                               ref.labels.numpy(), original.coupling_noise, original.seed)
        return MatchTargets(phi_targets=torch.from_numpy(phi).float(), labels=labels)

    def stop_z(self, target: ForgetTarget, scores: StopScores) -> float:
        """Memorisation shows in the tail (rows unseen data gets wrong), which a rank test over
        the whole phi distribution barely sees: compare the error rates directly."""
        from forgetflow.core.matching import count, excess_z

        return excess_z(*count(scores.pred_forget == scores.labels_forget),
                        *count(scores.pred_unseen == scores.labels_unseen))

    def output_check(self, target: ForgetTarget, gate: GateParams) -> OutputCheck:
        n = len(target.forget)
        if n < gate.min_auc_samples:
            return OutputCheck("third_party_auc", gate.max_third_party_auc,
                               f"{n} samples < min_auc_samples ({gate.min_auc_samples}), "
                               "the AUC has no power")
        return OutputCheck("third_party_auc", gate.max_third_party_auc)

    def depth_check(self, model: torch.nn.Module, parent: torch.nn.Module,
                    target: ForgetTarget, retain: ImageSet, test: ImageSet,
                    unseen: ImageSet, cfg: DepthGateParams, seed: int) -> DepthCheck:
        from forgetflow.core.depth_gate import samples_depth

        res = samples_depth(model, target.forget, unseen, retain, cfg, seed)
        return DepthCheck(res, cfg.max_relearn_gap, "max", (
            f"true-class confidence, the wider of before and after relearning: held "
            f"forgotten rows {res.forgotten:.3f}, held unseen rows {res.control:.3f} "
            f"({res.rows} rows); forgotten rows relearn no faster than unseen rows"))


SAMPLES = Samples()
