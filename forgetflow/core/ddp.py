"""Multi-process training: the recipe of `train_model` on N torchrun processes with DDP (gloo on
CPU, NCCL on CUDA). Switched on by FORGETFLOW_NPROC=N (`forgetflow train --nproc N`), so the
base model and Retrain (inside escalation or the benchmark) take the same path.

Why the result is the single-process model: every rank seeds the same way (same initial
weights; DDP also broadcasts rank 0's), walks the same seeded batch order and takes a strided
share of each batch; the local loss is the share's summed loss × N / batch size, so DDP's
average over ranks is exactly the full batch's mean gradient, and Adam then takes the same
step on every rank. What differs is the floating-point order of the gradient sum, so weights
agree to ~1e-6, not bit for bit. BatchNorm (resnet18) sees per-rank batch statistics on CPU;
the small CNN has none.

Only rank 0 writes the checkpoint and prints; the parent process loads it and does all logging
and registration, so ranks never touch MLflow, the ledger or the data registry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from forgetflow.core.data.tensors import ImageSet
    from forgetflow.core.models import Classifier

NPROC_ENV = "FORGETFLOW_NPROC"


class DistributedTrainingError(RuntimeError):
    """torchrun failed; the message carries the ranks' last output."""


def requested_nproc() -> int:
    raw = os.environ.get(NPROC_ENV, "1") or "1"
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{NPROC_ENV} must be a positive integer, got {raw!r}") from exc
    if value < 1:
        raise ValueError(f"{NPROC_ENV} must be a positive integer, got {value}")
    return value


def in_group() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank_and_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if in_group() else (0, 1)


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    if torch.cuda.is_available():
        return DistributedDataParallel(model, device_ids=[torch.cuda.current_device()])
    return DistributedDataParallel(model)


def sum_over_ranks(*values: float) -> list[Any]:
    """Loop statistics of the whole batch, not of one rank's share."""
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    out = tensor.tolist()
    return [out[0], int(out[1]), int(out[2])] if len(out) == 3 else out


def train_distributed(data: ImageSet, spec: dict[str, Any], cfg: dict[str, Any],
                      nproc: int) -> tuple[Classifier, dict[str, float]]:
    """Launch torchrun with `nproc` ranks on this machine and return rank 0's model. `spec`
    and `cfg` are the recipe's fields: each rank (forgetflow.core.ddp_rank) rebuilds them."""
    from forgetflow.core.modelfile import read_model_file

    with tempfile.TemporaryDirectory(prefix="forgetflow-ddp-") as tmp:
        work = Path(tmp)
        torch.save({"images": data.images, "labels": data.labels}, work / "data.pt")
        (work / "job.json").write_text(json.dumps({"spec": spec, "cfg": cfg}))
        env = {k: v for k, v in os.environ.items() if k != NPROC_ENV}
        threads = int(os.environ.get("FORGETFLOW_THREADS", "0")) or len(os.sched_getaffinity(0))
        env["FORGETFLOW_THREADS"] = str(max(1, threads // nproc))
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")) if p)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={nproc}", "-m", "forgetflow.core.ddp_rank", str(work)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise DistributedTrainingError(
                f"torchrun with {nproc} processes failed (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout)[-3000:]}")
        loaded = read_model_file(work / "model.safetensors")
    return loaded.model, {k: float(v) for k, v in loaded.extra["stats"].items()}
