"""One torchrun rank of `forgetflow.core.ddp.train_distributed`: join the group, run the
shared training recipe, rank 0 saves the checkpoint the parent process loads."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from forgetflow.core.data.tensors import ImageSet
from forgetflow.core.training import ModelSpec, TrainConfig, save_checkpoint, train_model


def _rank_main(work: Path) -> None:
    """One torchrun rank: join the group, train the shared recipe, rank 0 saves."""
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        job = json.loads((work / "job.json").read_text())
        tensors = torch.load(work / "data.pt", weights_only=True)
        data = ImageSet(tensors["images"], tensors["labels"],
                        _placeholder_ids(len(tensors["labels"])))
        spec, cfg = ModelSpec(**job["spec"]), TrainConfig(**job["cfg"])
        model, stats = train_model(data, spec, cfg, progress=False)
        if dist.get_rank() == 0:
            save_checkpoint(work / "model.safetensors", model, spec, cfg, {"stats": stats})
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _placeholder_ids(n: int):
    """Training never reads ids; the ranks get positions instead of the real ones."""
    return np.asarray([str(i) for i in range(n)], dtype=object)


if __name__ == "__main__":
    _rank_main(Path(sys.argv[1]))
