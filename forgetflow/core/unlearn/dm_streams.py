"""Input streams of `dm`: what each step draws from, in the space the trainable part reads.

dm freezes a prefix of the network (dm_trainable.py), so every pool (forget set, a replay pool
from the retain set, a third-party anchor pool) is pushed through that prefix exactly once and
the loop runs the trainable suffix alone. When everything trains the pools stay uint8 images.
Either way the loop code is the same: `net(stream.input(idx))`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from forgetflow.core.data.tensors import ImageSet, to_float
from forgetflow.core.models import Classifier
from forgetflow.core.triggers import stamp
from forgetflow.core.unlearn.dm_trainable import Split

CHUNK = 2048


@dataclass
class Pool:
    """A set of inputs (features or uint8 images) with labels."""

    x: torch.Tensor
    y: torch.Tensor
    encoded: bool

    def __len__(self) -> int:
        return len(self.y)

    def input(self, idx: torch.Tensor | slice, device: torch.device) -> torch.Tensor:
        x = self.x[idx] if isinstance(idx, slice) else self.x.index_select(0, idx)
        return (x if self.encoded else to_float(x)).to(device)


def gather(draws: list[tuple[Pool, torch.Tensor]], device: torch.device) -> torch.Tensor:
    """One step's input: the drawn rows of several pools, back to back, written straight into
    one buffer (index_select, not advanced indexing plus a cat: on the full split the copies
    took about a sixth of dm's run time)."""
    first = draws[0][0]
    out = torch.empty((sum(len(idx) for _, idx in draws), *first.x.shape[1:]),
                      dtype=first.x.dtype)
    at = 0
    for pool, idx in draws:
        torch.index_select(pool.x, 0, idx, out=out[at: at + len(idx)])
        at += len(idx)
    return (out if first.encoded else to_float(out)).to(device)


class Encoder:
    """Maps uint8 images into the trainable suffix's input space, once: the frozen prefix's
    activations (eval mode, so exact), or the images themselves when nothing is frozen."""

    def __init__(self, prefix: torch.nn.Module | None, device: torch.device) -> None:
        self.prefix, self.device = prefix, device

    @classmethod
    def for_head(cls, model: Classifier, device: torch.device) -> Encoder:
        """Everything below the head frozen: pools become the features the head reads."""
        return cls(Split(model, len(model.stages()) - 1).prefix, device)

    @torch.no_grad()
    def pool(self, images: torch.Tensor, labels: torch.Tensor) -> Pool:
        if self.prefix is None:
            return Pool(images, labels, encoded=False)
        self.prefix.eval()
        feats = [self.prefix(to_float(images[i: i + CHUNK]).to(self.device))
                 for i in range(0, max(1, len(images)), CHUNK)]  # empty: a (0, ...) batch
        return Pool(torch.cat(feats), labels, encoded=True)


@torch.no_grad()
def logits_of(net: torch.nn.Module, pool: Pool, device: torch.device,
              idx: torch.Tensor | None = None) -> torch.Tensor:
    """Logits of `net` (head or whole model) on a pool, in chunks, eval mode."""
    was_training = net.training
    net.eval()
    rows = torch.arange(len(pool)) if idx is None else idx
    out = [net(pool.input(rows[i: i + CHUNK], device)).float()
           for i in range(0, len(rows), CHUNK)]
    net.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def subsample(data: ImageSet, cap: int, seed: int) -> ImageSet:
    if len(data) <= cap:
        return data
    rows = np.sort(np.random.default_rng(seed).choice(len(data), cap, replace=False))
    return data.take(rows)


@dataclass
class Streams:
    """Everything the loop draws from, plus the original's outputs where they are targets."""

    forget: Pool
    replay: Pool
    anchor: Pool
    anchor_ref: torch.Tensor  # original's softmax on the anchor pool
    anchor_stamped: Pool | None  # backdoor: the anchor pool with the trigger stamped in


def build_streams(task, encoder: Encoder, original_net: torch.nn.Module, anchor: ImageSet,
                  replay_pool: int, anchor_pool: int, device: torch.device) -> Streams:
    """Encode the pools once; compute the original's anchor outputs once."""
    replay = subsample(task.retain, replay_pool, task.seed)
    anchor = subsample(anchor, anchor_pool, task.seed + 1)
    anchor_p = encoder.pool(anchor.images, anchor.labels)
    stamped = None
    if task.trigger is not None:
        stamped = encoder.pool(stamp(anchor.images, task.trigger), anchor.labels)
    return Streams(
        forget=encoder.pool(task.forget.images, task.forget.labels),
        replay=encoder.pool(replay.images, replay.labels),
        anchor=anchor_p,
        anchor_ref=task.scenario.anchor_targets(task.target,
                                                logits_of(original_net, anchor_p, device)),
        anchor_stamped=stamped,
    )
