"""Data-registry tasks. Writers carry DVC_TAG (and take the workspace file lock)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from forgetflow.adapters.datarepo import DataRepo, DataVersion
from forgetflow.adapters.dataversions import drop_version, load_bundle, prepare
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.data.manifest import Manifest
from forgetflow.core.data.tensors import DataBundle
from forgetflow.core.params import DataParams
from tasks import DVC_TAG, unless_lease_lost

IO = {"cache_policy": NO_CACHE, "persist_result": False}


def _repo() -> DataRepo:
    return DataRepo(Workspace.from_env())


@task(name="prepare-data-version", tags=[DVC_TAG], retries=1, retry_delay_seconds=5, **IO)
def prepare_data(data: DataParams, allow_source_change: bool = False
                 ) -> tuple[DataVersion, bool]:
    return prepare(_repo(), data, allow_source_change)


@task(name="load-data-version", retries=2, retry_delay_seconds=2, **IO)
def load_data(tag: str | None = None) -> tuple[DataVersion, DataBundle, Manifest]:
    repo = _repo()
    version = repo.version(tag)
    bundle, manifest = load_bundle(repo, version)
    return version, bundle, manifest


@task(name="commit-data-version", tags=[DVC_TAG], retries=1, retry_delay_seconds=5,
      retry_condition_fn=unless_lease_lost, **IO)
def commit_batch_version(parent: DataVersion, manifest: Manifest, drop_ids: np.ndarray,
                         request_of: dict[str, str], batch_id: str, request_ids: list[int],
                         fence: Callable[[], None] | None = None) -> DataVersion:
    return drop_version(_repo(), parent, drop_ids, request_of, batch_id, request_ids, manifest,
                        fence)


@task(name="find-planning-base", retries=2, retry_delay_seconds=2, **IO)
def planning_base(batch_id: str) -> str:
    """The data version a batch plans against: the one before its own commit when a killed
    run already made that commit (so the plan is the same), else the newest."""
    repo = _repo()
    committed = repo.version_of_batch(batch_id)
    return committed.info["parent"] if committed is not None else repo.version().tag
