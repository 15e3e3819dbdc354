"""Session-wide test hygiene and small real-data fixtures shared by every tier.

Environment: one compute thread by default (CI machines are shared), no telemetry from MLflow,
Prefect or anything honouring DO_NOT_TRACK, and a generous Prefect ephemeral-server start-up
timeout. These are set at import time, before any test module imports torch, MLflow or Prefect.

Data: `digits_bundle` (sklearn's bundled digits, always present), `fmnist_raw` (the real
Fashion-MNIST files) and `tiny_fmnist_bundle` (a few thousand real Fashion-MNIST samples).
Fashion-MNIST is a hard requirement: `make setup` installs it (as root), so a missing copy
FAILS the tests that need it with instructions instead of silently skipping them.
Prefect/MLflow fixtures live in tests/pipeline/conftest.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("FORGETFLOW_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", os.environ["FORGETFLOW_THREADS"])
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ["DO_NOT_TRACK"] = "1"

import pytest  # noqa: E402
from postgres import pg_database_factory, pg_url  # noqa: E402,F401  (fixtures)
from prefectserver import prefect_pg_server  # noqa: E402,F401  (fixture)
from s3servers import moto_s3, s3_server, seaweed_s3  # noqa: E402,F401  (fixtures)

from forgetflow.core.data.manifest import Manifest, build_manifest  # noqa: E402
from forgetflow.core.data.sources import (  # noqa: E402
    DataSourceError,
    RawSource,
    RawSplit,
    load_source,
)
from forgetflow.core.data.tensors import DataBundle, materialize  # noqa: E402

TINY_TRAIN = 3000
TINY_TEST = 1000


@pytest.fixture(scope="session")
def digits_raw() -> RawSource:
    return load_source("digits")


@pytest.fixture(scope="session")
def digits_manifest(digits_raw: RawSource) -> Manifest:
    return build_manifest(digits_raw, seed=0, third_party_fraction=0.1, subject_size=20)


@pytest.fixture(scope="session")
def digits_bundle(digits_raw: RawSource, digits_manifest: Manifest) -> DataBundle:
    """sklearn digits (16x16 after upscaling), split with the default knobs. Do not mutate."""
    return materialize(digits_raw, digits_manifest)


@pytest.fixture(scope="session")
def fmnist_raw() -> RawSource:
    """The full Fashion-MNIST source; fails (never skips) when its files are absent."""
    try:
        return load_source("fashion-mnist")
    except DataSourceError as exc:
        pytest.fail(
            f"Fashion-MNIST is required by the test suite but could not be loaded: {exc}. "
            "Install it with `make setup` (apt-get as root) or `sudo apt-get install "
            "dataset-fashion-mnist`, or "
            "point FORGETFLOW_FASHION_MNIST at a folder holding the four IDX .gz files.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def tiny_fmnist_raw(fmnist_raw: RawSource) -> RawSource:
    """The first TINY_TRAIN train and TINY_TEST test rows: positions (and so ids) are the
    positions in the real files."""
    return RawSource(
        fmnist_raw.name,
        fmnist_raw.classes,
        RawSplit(fmnist_raw.train.images[:TINY_TRAIN], fmnist_raw.train.labels[:TINY_TRAIN]),
        RawSplit(fmnist_raw.test.images[:TINY_TEST], fmnist_raw.test.labels[:TINY_TEST]),
    )


@pytest.fixture(scope="session")
def tiny_fmnist_manifest(tiny_fmnist_raw: RawSource) -> Manifest:
    return build_manifest(tiny_fmnist_raw, seed=0, third_party_fraction=0.1, subject_size=20)


@pytest.fixture(scope="session")
def tiny_fmnist_bundle(tiny_fmnist_raw: RawSource, tiny_fmnist_manifest: Manifest) -> DataBundle:
    """A few thousand real Fashion-MNIST samples (28x28, 10 classes). Do not mutate."""
    return materialize(tiny_fmnist_raw, tiny_fmnist_manifest)
