"""Class requests on networks whose features carry the class: rebuild the updated part.

Matching outputs leaves a forgotten class as readable from the penultimate features as before
(the change lands in the last layers' weights for that class). A model that never saw the
class has no features for it. So, when dm updates feature stages, the updated suffix is
re-initialised and rebuilt from the original's class-masked outputs on rows without the class
(replay and anchor pools, cached prefix activations): the suffix learns everything the
original knew except the class, and the forgotten rows fall wherever the other classes'
features put them, as under Retrain (docs/method.md §14).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from forgetflow.core.unlearn.dm_streams import CHUNK, Pool, Streams, gather, logits_of

RESETS = ("auto", "off")


def applies(reset: str, forget_class: int | None, start: int, n_stages: int) -> bool:
    """Class requests only, and only where a frozen prefix exists and the suffix holds a
    feature stage: head-only updates (the reference CNN) keep plain dm, and `trainable: all`
    (the ladder's second rung) would be a retrain by distillation."""
    return reset == "auto" and forget_class is not None and 0 < start < n_stages - 1


@torch.no_grad()
def reinitialise(net: nn.Module) -> None:
    """Fresh weights for every layer of the suffix that trains (BatchNorm: statistics too)."""
    for m in net.modules():
        own = list(m.parameters(recurse=False))
        if own and all(p.requires_grad for p in own) and hasattr(m, "reset_parameters"):
            m.reset_parameters()
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()


def rebuild(net: nn.Module, original_net: nn.Module, streams: Streams,
            masked_targets: Callable[[torch.Tensor], torch.Tensor], steps: int, lr: float,
            batch: int, seed: int, device: torch.device) -> None:
    """Re-initialise `net` and distil it (KL to the original's class-masked softmax) on the
    replay and anchor pools (an empty one left out), BatchNorm on batch statistics; then
    settle BN's running statistics on those rows so eval mode (the gate, serving) is exact."""
    replay_ref = masked_targets(logits_of(original_net, streams.replay, device))
    pools = [(pool, ref) for pool, ref in ((streams.replay, replay_ref),
                                            (streams.anchor, streams.anchor_ref)) if len(pool)]
    reinitialise(net)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(steps):
        draws = [(pool, torch.randint(0, len(pool), (max(1, batch // len(pools)),), generator=gen))
                 for pool, _ in pools]
        out = net(gather(draws, device)).float()
        ref = torch.cat([r[idx] for (_, r), (_, idx) in zip(pools, draws, strict=True)])
        loss = F.kl_div(F.log_softmax(out, 1), ref.to(device), reduction="batchmean")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    settle_batchnorm(net, [pool for pool, _ in pools], device)
    net.eval()


@torch.no_grad()
def settle_batchnorm(net: nn.Module, pools: list[Pool], device: torch.device) -> None:
    """BN running statistics as the average of the statistics of the pools' chunks (up to
    CHUNK rows each, every chunk weighing the same)."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    net.train()
    for pool in pools:
        for i in range(0, len(pool), CHUNK):
            net(pool.input(slice(i, min(len(pool), i + CHUNK)), device))
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
    net.eval()
