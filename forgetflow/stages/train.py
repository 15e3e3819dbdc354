"""Stage train: manifest + params `train.*` → build/model.safetensors, build/train.json."""

from __future__ import annotations

import json

from forgetflow.core.data.manifest import Manifest
from forgetflow.core.data.sources import load_source
from forgetflow.core.data.tensors import materialize
from forgetflow.core.params import load_params
from forgetflow.core.training import recipe_of, save_checkpoint, train_base
from forgetflow.stages import BUILD, MANIFEST, MODEL


def main() -> None:
    params = load_params("params.yaml")
    bundle = materialize(load_source(params.data.source, params.data.root,
                                     params.data.channels, params.data.image_size),
                         Manifest.read_csv(MANIFEST))
    recipe = recipe_of(params.train)
    model, spec, stats = train_base(bundle, recipe)
    save_checkpoint(MODEL, model, spec, recipe, {"source": bundle.source})
    (BUILD / "train.json").write_text(json.dumps(stats, indent=2) + "\n")


if __name__ == "__main__":
    main()
