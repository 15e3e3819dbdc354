"""Stage evaluate: build/model.safetensors on each split → build/metrics.json and two plots
(confusion matrix and per-class test accuracy)."""

from __future__ import annotations

import csv
import json

from forgetflow.core.data.manifest import Manifest
from forgetflow.core.data.sources import load_source
from forgetflow.core.data.tensors import materialize
from forgetflow.core.metrics import accuracy, predict_logits
from forgetflow.core.params import load_params
from forgetflow.core.training import load_checkpoint
from forgetflow.stages import BUILD, MANIFEST, MODEL


def main() -> None:
    params = load_params("params.yaml")
    bundle = materialize(load_source(params.data.source, params.data.root,
                                     params.data.channels, params.data.image_size),
                         Manifest.read_csv(MANIFEST))
    model, *_ = load_checkpoint(MODEL)
    metrics = {}
    for split in ("train", "third_party", "test"):
        data = getattr(bundle, split)
        metrics[f"{split}_acc"] = accuracy(predict_logits(model, data.images), data.labels)
    (BUILD / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    predicted = predict_logits(model, bundle.test.images).argmax(1).tolist()
    actual = bundle.test.labels.tolist()
    plots = BUILD / "plots"
    plots.mkdir(exist_ok=True)
    with open(plots / "confusion.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["actual", "predicted"])
        writer.writerows((bundle.classes[a], bundle.classes[p]) for a, p in zip(actual, predicted,
                                                                              strict=True))
    with open(plots / "per_class.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["class", "accuracy"])
        for k, name in enumerate(bundle.classes):
            rows = [p == a for a, p in zip(actual, predicted, strict=True) if a == k]
            writer.writerow([name, sum(rows) / len(rows) if rows else 0.0])


if __name__ == "__main__":
    main()
