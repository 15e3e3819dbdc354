"""Reference distributions and the stopping test for `dm` (docs/method.md §2-§5).

Everything here is computed once from the *original* model, before any update: the reference
is what a model that never saw the forget set does on unseen data, and the original model on
third-party samples is exactly such a model for those samples. What the targets and the
statistic are for a scenario is that scenario's hook (forgetflow/core/scenarios); the math
they share is forgetflow/core/matching.py.
"""

from __future__ import annotations

import torch

from forgetflow.core.matching import MatchTargets, OriginalOutputs, StopScores
from forgetflow.core.unlearn.base import UnlearnTask
from forgetflow.core.unlearn.dm_streams import Encoder, Streams, logits_of, subsample


def build_targets(task: UnlearnTask, encoder: Encoder, original_net: torch.nn.Module,
                  streams: Streams, device: torch.device,
                  coupling_noise: float = 0.0) -> MatchTargets:
    """The original's outputs on the forget set and on a third-party reference sample, turned
    into per-row targets by the task's scenario."""
    def logits(images: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return logits_of(original_net, encoder.pool(images, y), device)

    original = OriginalOutputs(
        logits=logits,
        forget_logits=lambda: logits_of(original_net, streams.forget, device),
        subsample=lambda data, cap: subsample(data, cap, task.seed),
        coupling_noise=coupling_noise, seed=task.seed)
    return task.scenario.match_targets(task.target, original)


@torch.no_grad()
def stop_statistic(net: torch.nn.Module, task: UnlearnTask, streams: Streams,
                   probe: torch.Tensor, cfg, device: torch.device) -> tuple[float, float, bool]:
    """The stopping test (docs/method.md §5): does the forget probe behave like the reference
    third-party samples, scored by the *current* model, up to `stop_z` standard errors (the
    scenario's statistic), while the model still agrees with the original on them (utility
    restored by replay)? Returns (z statistic, agreement, done)."""
    rows = torch.arange(min(len(streams.anchor), cfg.probe_size))
    pred_u = logits_of(net, streams.anchor, device, rows).argmax(1)
    ref_pred = streams.anchor_ref[rows].argmax(1)
    keep = ref_pred != task.forget_class if task.forget_class is not None else slice(None)
    agreement = float((pred_u == ref_pred)[keep].float().mean())

    def stamped_pred(mask: torch.Tensor) -> torch.Tensor:
        return logits_of(net, streams.anchor_stamped, device, rows[mask]).argmax(1)

    scores = StopScores(pred_forget=logits_of(net, streams.forget, device, probe).argmax(1),
                        labels_forget=streams.forget.y[probe], pred_unseen=pred_u,
                        labels_unseen=streams.anchor.y[rows], stamped_pred=stamped_pred)
    z = task.scenario.stop_z(task.target, scores)
    return z, agreement, z <= cfg.stop_z and agreement >= cfg.min_agreement
