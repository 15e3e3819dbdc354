"""Seeded training loop and self-describing checkpoints."""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from forgetflow.core import ddp
from forgetflow.core.data.tensors import DataBundle, ImageSet, to_float
from forgetflow.core.metrics import accuracy, predict_logits
from forgetflow.core.modelfile import read_model_file, save_model_file
from forgetflow.core.models import Classifier, build_model
from forgetflow.core.params import TrainParams
from forgetflow.core.progress import progress_enabled


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe; stored inside every checkpoint so a model explains itself."""

    model: str = "cnn"
    epochs: int = 12
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """What `build_model` needs to rebuild the architecture."""

    name: str
    in_channels: int
    num_classes: int
    image_size: int
    mean: list[float]
    std: list[float]


def pick_device() -> torch.device:
    """CUDA when present (with AMP and channels_last in the loop), else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def configure_threads() -> None:
    """Use every core we were given, but no more (oversubscription slows small models)."""
    wanted = int(os.environ.get("FORGETFLOW_THREADS", "0")) or len(os.sched_getaffinity(0))
    torch.set_num_threads(max(1, wanted))


def spec_for(bundle: DataBundle, model_name: str) -> ModelSpec:
    """Channel statistics from the training split, so normalization travels with the model."""
    pixels = to_float(bundle.train.images[:10000])
    mean = pixels.mean(dim=(0, 2, 3)).tolist()
    std = pixels.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
    c, h, _ = bundle.image_shape
    return ModelSpec(model_name, c, bundle.num_classes, h, mean, std)


def new_model(spec: ModelSpec) -> Classifier:
    return build_model(
        spec.name, spec.in_channels, spec.num_classes, spec.image_size, spec.mean, spec.std
    )


def batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start: start + batch_size]


def train_model(
    data: ImageSet, spec: ModelSpec, cfg: TrainConfig, progress: bool = True
) -> tuple[Classifier, dict[str, float]]:
    """Train from scratch: Adam + one-cycle schedule, deterministic given cfg.seed.

    With FORGETFLOW_NPROC=N > 1 the same recipe runs on N torchrun processes (DDP): every rank
    walks the same seeded batch order and takes a strided share of each batch, and the loss is
    scaled so DDP's averaged gradient is the full batch's mean gradient (forgetflow.core.ddp).
    """
    if len(data) == 0:
        raise ValueError("cannot train on an empty training set")
    if ddp.requested_nproc() > 1 and not ddp.in_group():
        return ddp.train_distributed(data, asdict(spec), asdict(cfg), ddp.requested_nproc())
    rank, world = ddp.rank_and_world()
    configure_threads()
    seed_everything(cfg.seed)
    device = pick_device()
    model = new_model(spec).to(device)
    use_amp = device.type == "cuda"
    if use_amp:
        model = model.to(memory_format=torch.channels_last)
    net = ddp.wrap(model) if world > 1 else model
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * ((len(data) + cfg.batch_size - 1) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    images, labels = data.images, data.labels
    bar = tqdm(total=steps, desc="train", leave=False, file=sys.stderr, dynamic_ncols=True,
               disable=not (progress and progress_enabled()) or rank > 0)
    loss_sum, seen, correct = 0.0, 0, 0
    for epoch in range(cfg.epochs):
        loss_sum, seen, correct = 0.0, 0, 0
        model.train()
        for batch in batches(len(data), cfg.batch_size, gen):
            idx = batch[rank::world]  # this rank's share of the global batch
            x = to_float(images[idx]).to(device, non_blocking=True)
            y = labels[idx].to(device, non_blocking=True)
            with torch.autocast(device.type, enabled=use_amp, dtype=torch.bfloat16):
                logits = net(x)
                loss = (F.cross_entropy(logits, y) if world == 1 else
                        F.cross_entropy(logits, y, reduction="sum") * world / len(batch))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * (len(y) if world == 1 else len(batch) / world)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.update(1)
        bar.set_postfix(epoch=epoch + 1, loss=f"{loss_sum / max(seen, 1):.3f}")
    bar.close()
    if world > 1:
        loss_sum, seen, correct = ddp.sum_over_ranks(loss_sum, seen, correct)
    model.eval()
    return model.cpu(), {"train_loss": loss_sum / seen, "train_acc_running": correct / seen}


def save_checkpoint(path: str | Path, model: Classifier, spec: ModelSpec, cfg: TrainConfig,
                    extra: dict | None = None) -> str:
    """Weights plus the config that built them, in one safetensors file (no pickle: loading a
    checkpoint never runs code). Returns the file's sha256."""
    return save_model_file(path, model, spec, cfg, extra)


def load_checkpoint(path: str | Path, expected_sha256: str | None = None
                    ) -> tuple[Classifier, ModelSpec, TrainConfig, dict]:
    """Rebuild and verify (see forgetflow.core.modelfile); raises ModelFileError if tampered."""
    loaded = read_model_file(path, expected_sha256)
    return (loaded.model, ModelSpec(**loaded.spec), TrainConfig(**loaded.train_config),
            loaded.extra)


def recipe_of(train: TrainParams, epochs: int | None = None) -> TrainConfig:
    """params `train` as the recipe a checkpoint or registered model carries."""
    return TrainConfig(model=train.model, epochs=epochs or train.epochs,
                       batch_size=train.batch_size, lr=train.lr,
                       weight_decay=train.weight_decay, seed=train.seed)


def train_base(bundle: DataBundle, recipe: TrainConfig) -> tuple[Classifier, ModelSpec,
                                                                  dict[str, float]]:
    """Train on the version's train split; report test accuracy alongside the loop's stats."""
    spec = spec_for(bundle, recipe.model)
    model, stats = train_model(bundle.train, spec, recipe, progress=False)
    stats["test_acc"] = accuracy(predict_logits(model, bundle.test.images), bundle.test.labels)
    return model, spec, stats
