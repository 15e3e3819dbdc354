"""Stage prepare: params `data.*` → build/manifest.csv (ids, labels, split, subject)."""

from __future__ import annotations

from forgetflow.core.data.manifest import build_manifest
from forgetflow.core.data.sources import load_source
from forgetflow.core.params import load_params
from forgetflow.stages import BUILD, MANIFEST


def main() -> None:
    data = load_params("params.yaml").data
    raw = load_source(data.source, data.root, data.channels, data.image_size)
    manifest = build_manifest(raw, data.seed, data.third_party_fraction, data.subject_size,
                              data.holdout_fraction)
    BUILD.mkdir(exist_ok=True)
    manifest.write_csv(MANIFEST)


if __name__ == "__main__":
    main()
