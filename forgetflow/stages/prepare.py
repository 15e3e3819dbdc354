"""Stage prepare: params `data.*` → build/manifest.csv (ids, labels, split, subject), minus
every id the workspace's exclusion manifest holds: a base model reproduced after deletions
never sees a forgotten row. dvc.yaml marks the stage always_changed, since the exclusions live
in the workspace (FORGETFLOW_HOME), not in this repo; train reruns only when the manifest
it writes changes."""

from __future__ import annotations

from forgetflow.core.data.manifest import build_manifest
from forgetflow.core.data.sources import load_source
from forgetflow.core.params import load_params
from forgetflow.stages import BUILD, MANIFEST


def excluded_ids() -> tuple[set[str], str | None]:
    """(every excluded id, the data version read) of the workspace's data registry; none
    when the workspace has no data version yet."""
    from forgetflow.adapters.datarepo import DataRepo
    from forgetflow.adapters.workspace import Workspace

    repo = DataRepo(Workspace.from_env())
    if not repo.exists():
        return set(), None
    head = repo.version()
    return repo.exclusions(head).ids, head.tag


def main() -> None:
    data = load_params("params.yaml").data
    raw = load_source(data.source, data.root, data.channels, data.image_size)
    manifest = build_manifest(raw, data.seed, data.third_party_fraction, data.subject_size,
                              data.holdout_fraction)
    excluded, version = excluded_ids()
    kept = manifest.without(excluded)
    if version is not None:
        print(f"prepare: {len(manifest.ids) - len(kept.ids)} row(s) left out, as the "
              f"exclusion manifest of data {version} says")
    BUILD.mkdir(exist_ok=True)
    kept.write_csv(MANIFEST)


if __name__ == "__main__":
    main()
