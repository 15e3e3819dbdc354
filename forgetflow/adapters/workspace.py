"""The embedded workspace: one folder (FORGETFLOW_HOME) holding every stateful piece.

Nothing here creates files at import time; `Workspace.from_env()` only computes paths, and
`ensure()` makes the folder when a command is about to write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = ".forgetflow"


@dataclass(frozen=True)
class S3Settings:
    """Where S3 lives when it is switched on (any S3-compatible endpoint)."""

    bucket: str
    prefix: str
    endpoint_url: str | None

    def url(self, *parts: str) -> str:
        tail = "/".join(p.strip("/") for p in (self.prefix, *parts) if p)
        return f"s3://{self.bucket}/{tail}"


def s3_settings() -> S3Settings | None:
    """S3 is on when FORGETFLOW_S3_URL is set, or when AWS credentials and an S3 endpoint
    (MLFLOW_S3_ENDPOINT_URL / AWS_ENDPOINT_URL) are both present; the bucket then defaults to
    FORGETFLOW_S3_BUCKET or `forgetflow`."""
    endpoint = os.environ.get("MLFLOW_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
    url = os.environ.get("FORGETFLOW_S3_URL")
    if url:
        if not url.startswith("s3://"):
            raise ValueError(f"FORGETFLOW_S3_URL must start with s3://, got {url!r}")
        bucket, _, prefix = url[len("s3://"):].partition("/")
        return S3Settings(bucket, prefix, endpoint)
    if endpoint and os.environ.get("AWS_ACCESS_KEY_ID"):
        return S3Settings(os.environ.get("FORGETFLOW_S3_BUCKET", "forgetflow"), "", endpoint)
    return None


@dataclass(frozen=True)
class Workspace:
    """Paths (and URLs) of the ledger, MLflow, the data registry repo and its DVC remote."""

    root: Path

    @classmethod
    def from_env(cls) -> Workspace:
        return cls(Path(os.environ.get("FORGETFLOW_HOME", DEFAULT_HOME)).expanduser().resolve())

    def ensure(self) -> Workspace:
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    @property
    def ledger_url(self) -> str:
        return os.environ.get("FORGETFLOW_DB_URL") or f"sqlite:///{self.root / 'ledger.db'}"

    @property
    def mlflow_tracking_uri(self) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def mlflow_artifact_location(self) -> str:
        s3 = s3_settings()
        return s3.url("mlflow") if s3 else (self.root / "mlartifacts").as_uri()

    @property
    def data_repo(self) -> Path:
        return self.root / "data-registry"

    @property
    def dvc_remote_url(self) -> str:
        """FORGETFLOW_DVC_REMOTE wins; else S3 when switched on; else a local folder."""
        explicit = os.environ.get("FORGETFLOW_DVC_REMOTE")
        if explicit:
            return explicit
        s3 = s3_settings()
        return s3.url("dvc") if s3 else str(self.root / "dvc-remote")

    @property
    def lock_path(self) -> Path:
        return self.root / "data-registry.lock"

    @property
    def prefect_home(self) -> Path:
        return self.root / "prefect"

    def describe(self) -> dict[str, str]:
        """What lives where, for `forgetflow demo` and the README."""
        return {
            "home": str(self.root), "ledger": self.ledger_url,
            "mlflow_tracking_uri": self.mlflow_tracking_uri,
            "mlflow_artifacts": self.mlflow_artifact_location,
            "data_repo": str(self.data_repo), "dvc_remote": self.dvc_remote_url,
        }
