"""Data registry: versions as git tags, exclusions that accumulate and are honoured,
dvc.api read-back, project-owned poisoned rows dropped physically."""

from __future__ import annotations

import io
import subprocess

import dvc.api
import numpy as np
import pytest

from forgetflow.adapters.datarepo import DataRepo, DataRepoError
from forgetflow.adapters.dataversions import drop_version, load_bundle, poison_version, prepare
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.data.manifest import Manifest
from forgetflow.core.params import DataParams
from forgetflow.core.triggers import TriggerSpec, carries_trigger

DIGITS = DataParams(source="digits")


@pytest.fixture
def repo() -> DataRepo:
    return DataRepo(Workspace.from_env())


def test_prepare_is_versioned_and_idempotent(repo: DataRepo) -> None:
    v1, created = prepare(repo, DIGITS)
    assert created and v1.tag == "v1" and repo.tags() == ["v1"]
    again, created_again = prepare(repo, DIGITS)
    assert not created_again and again.rev == v1.rev
    text = dvc.api.read("manifest.csv", repo=str(repo.path), rev="v1")
    assert Manifest.read_csv(io.StringIO(text)).digest() == v1.info["manifest_sha256"]
    tracked = subprocess.run(["git", "-C", str(repo.path), "ls-files"], capture_output=True,
                             text=True, check=True).stdout.split()
    assert "manifest.csv.dvc" in tracked and "manifest.csv" not in tracked


def test_drop_version_excludes_and_accumulates(repo: DataRepo) -> None:
    v1, _ = prepare(repo, DIGITS)
    first = np.array(["digits:train:0", "digits:train:1"], dtype=object)
    v2 = drop_version(repo, v1, first, {"digits:train:0": "7"}, "b1", [7])
    second = np.array(["digits:train:2"], dtype=object)
    v3 = drop_version(repo, v2, second, {"digits:train:2": "8"}, "b2", [8])
    assert repo.tags() == ["v1", "v2", "v3"]
    with dvc.api.open("manifest.csv", repo=str(repo.path), rev=v3.tag) as fh:
        ids = set(Manifest.read_csv(fh).ids.tolist())
    assert not ids & {"digits:train:0", "digits:train:1", "digits:train:2"}
    assert "digits:train:0" in set(repo.manifest(v1).ids.tolist())  # older versions immutable
    rows = repo.exclusions(v3).rows
    assert [r[0] for r in rows] == ["digits:train:0", "digits:train:1", "digits:train:2"]
    assert rows[0][1:] == ("7", "b1", "v2") and rows[2][1:] == ("8", "b2", "v3")
    with pytest.raises(DataRepoError, match="moved"):
        drop_version(repo, v2, second, {}, "b3", [9])
    # a later prepare from the source honours the exclusion manifest
    v_again, created = prepare(repo, DIGITS)
    assert not created and v_again.tag == "v3"
    other, created = prepare(repo, DataParams(source="digits", seed=1))
    assert created and not set(repo.manifest(other).ids.tolist()) & repo.exclusions(v3).ids


def test_poisoned_rows_are_project_owned_and_dropped(repo: DataRepo) -> None:
    prepare(repo, DIGITS)
    spec = TriggerSpec(size=3, target=0)
    v2 = poison_version(repo, spec, rate=0.05, seed=0)
    bundle, _ = load_bundle(repo, v2)
    stamped = carries_trigger(bundle.train.images, spec)
    assert stamped.sum() == v2.info["poison"]["count"] > 0
    assert (bundle.train.labels.numpy()[stamped] == 0).all()
    overlay_rev = v2.rev
    poisoned = bundle.train.ids[stamped]
    v3 = drop_version(repo, v2, poisoned, {}, "b1", [1])
    assert v3.info["poison"] is None and not (repo.path / "poison" / "train.npz").exists()
    assert not carries_trigger(load_bundle(repo, v3)[0].train.images, spec).any()
    cache = repo.path / ".dvc" / "cache"
    before = {p.name for p in cache.rglob("*") if p.is_file()}
    repo.gc()
    after = {p.name for p in cache.rglob("*") if p.is_file()}
    assert len(after) < len(before)
    with pytest.raises(Exception):  # noqa: B017 - the purged blob is gone from cache and remote
        dvc.api.read("poison/train.npz", repo=str(repo.path), rev=overlay_rev, mode="rb")


def test_without_scales_to_large_manifests() -> None:
    """Regression: numpy's isin on object arrays compared every pair, so dropping 6000 ids
    from a Fashion-MNIST-sized manifest took ~12 s per call inside each batch."""
    import time

    n = 200_000
    ids = np.asarray([f"big:train:{i}" for i in range(n)], dtype=object)
    manifest = Manifest(ids, np.zeros(n, dtype=np.int64), np.full(n, "train", dtype=object),
                        np.full(n, "s", dtype=object))
    drop = set(ids[::4].tolist())
    started = time.perf_counter()
    kept = manifest.without(drop)
    assert time.perf_counter() - started < 5.0
    assert len(kept) == n - len(drop) and not drop & set(kept.ids.tolist())


def test_working_copy_is_read_only_when_it_matches_the_version(repo: DataRepo) -> None:
    v1, _ = prepare(repo, DIGITS)
    (repo.path / "manifest.csv").write_text("id,label,split,subject\n")
    assert repo.manifest(v1).digest() == v1.info["manifest_sha256"]


def test_samples_selection_scales_to_large_requests() -> None:
    """Regression: forget.select matched sample ids with numpy's pairwise object isin, so a
    5000-id request against a 200k-row manifest took tens of seconds at submit and again in
    the batch."""
    import time

    from forgetflow.core.forget import ForgetRequest, ForgetSetError, select

    n = 200_000
    ids = np.asarray([f"big:train:{i}" for i in range(n)], dtype=object)
    manifest = Manifest(ids, np.arange(n, dtype=np.int64) % 10,
                        np.full(n, "train", dtype=object), np.full(n, "s", dtype=object))
    wanted = ids[::40].tolist()
    started = time.perf_counter()
    mask = select(ForgetRequest("samples", ids=tuple(wanted)), manifest)
    assert time.perf_counter() - started < 5.0
    assert mask.sum() == len(wanted) and set(ids[mask].tolist()) == set(wanted)
    with pytest.raises(ForgetSetError, match="1 unknown sample id"):
        select(ForgetRequest("samples", ids=("big:train:0", "big:train:999999")), manifest)


def test_rapid_versions_each_commit_their_own_metadata(repo: DataRepo) -> None:
    """Regression: DVC rewrote git's index with stale stat data, so a same-size version.json
    written within the same second was not staged and vN carried v(N-1)'s metadata."""
    head, _ = prepare(repo, DIGITS)
    for i in range(4):
        head = drop_version(repo, head, np.array([f"digits:train:{i}"], dtype=object), {},
                            f"b{i}", [i])
        again = repo.version(head.tag)
        assert again.info["tag"] == head.tag and again.info["batch_id"] == f"b{i}"
        assert repo.manifest(again).digest() == again.info["manifest_sha256"]
