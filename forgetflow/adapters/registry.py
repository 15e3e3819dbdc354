"""MLflow adapter: the only module that imports mlflow.

Models are logged in the code-free `forgetflow` flavor (forgetflow.adapters.mlflow_model:
safetensors + config, a pyfunc loader and a pt2 export; nothing is pickled), and the file's
sha256 is a model-version tag that every load checks. The recipe that built a model travels as
run params, so unlearning and retraining can rebuild it. Forget sets appear only as a sha256
and a size: never ids or images.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from forgetflow.adapters.stack import check_database, ensure_bucket
from forgetflow.adapters.workspace import Workspace, s3_settings
from forgetflow.core.faults import fault_point

if TYPE_CHECKING:  # torch and mlflow load on first use: the ledger verbs need neither
    import mlflow

    from forgetflow.core.models import Classifier
    from forgetflow.core.training import ModelSpec, TrainConfig

EXPERIMENT = "forgetflow"
TAG = "forgetflow."  # prefix of every lineage tag (the schema: forgetflow.pipeline.lineage)
MODEL_SHA_TAG = "model_sha256"  # sha256 of the version's weights file, checked on every load
MODEL_SHA_TAG_FULL = TAG + MODEL_SHA_TAG
# retention (forgetflow.pipeline.taint): set on versions whose data holds rows of a request
TAINTED, TAINTED_BY, TAINTED_AT = "tainted", "tainted_by", "tainted_at"
ALIAS_LEFT_AT = "alias_left_at"  # when the last alias moved off a version
TOMBSTONE = "tombstone"  # when its weights and artifacts were deleted (retention)


class RegistryError(LookupError):
    """A registered model, version or alias does not exist, or a promotion is refused."""


@dataclass(frozen=True)
class ModelRef:
    """One registered version: where it came from and what the lineage tags say."""

    name: str
    version: str
    run_id: str
    tags: dict[str, str]
    aliases: list[str]

    def tag(self, key: str) -> str | None:
        return self.tags.get(TAG + key)


@dataclass(frozen=True)
class InputRef:
    """A data version as MLflow sees it: digest and size only."""

    context: str
    name: str
    source: str
    sha256: str
    size: int


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _quiet() -> None:
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")


class Registry:
    """Register, tag, alias and load models in the workspace's MLflow."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.uri = ws.mlflow_tracking_uri
        if self.uri.startswith("sqlite:///"):
            ws.ensure()
        check_database(self.uri, "MLFLOW_TRACKING_URI")  # MLflow itself retries for minutes

    @cached_property
    def client(self) -> mlflow.MlflowClient:
        import mlflow

        _quiet()
        return mlflow.MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def _use_globally(self) -> None:
        """mlflow's fluent API (log_model, load_model of `models:/` URIs) reads the global
        URIs, not the client's: point them at this workspace before using it."""
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)

    def _experiment_id(self) -> str:
        exp = self.client.get_experiment_by_name(EXPERIMENT)
        if exp is not None:
            return exp.experiment_id
        return self.client.create_experiment(
            EXPERIMENT, artifact_location=self.ws.mlflow_artifact_location)

    def model_exists(self, name: str) -> bool:
        from forgetflow.adapters import registry_sql

        fast = registry_sql.model_exists(self.uri, name)  # spares the mlflow import
        if fast is not None:
            return fast
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
            return True
        except MlflowException:
            return False

    def ref(self, name: str, version_or_alias: str) -> ModelRef:
        """A version by number or alias (`champion`, `challenger`, ...)."""
        from mlflow.exceptions import MlflowException

        if not self.model_exists(name):
            raise RegistryError(f"no registered model named {name!r}")
        try:
            mv = (self.client.get_model_version(name, version_or_alias)
                  if version_or_alias.isdigit()
                  else self.client.get_model_version_by_alias(name, version_or_alias))
        except MlflowException as exc:
            raise RegistryError(f"model {name!r} has no version or alias {version_or_alias!r}"
                                ) from exc
        return ModelRef(name, str(mv.version), mv.run_id, dict(mv.tags), list(mv.aliases))

    def alias(self, name: str, alias: str) -> ModelRef | None:
        try:
            return self.ref(name, alias)
        except RegistryError:
            return None

    def versions(self, name: str) -> list[ModelRef]:
        """Every version with its tags and aliases (the search API leaves aliases out)."""
        found = self.client.search_model_versions(f"name = '{name}'")
        held: dict[str, list[str]] = {}
        for alias, version in self.client.get_registered_model(name).aliases.items():
            held.setdefault(str(version), []).append(alias)
        refs = [ModelRef(name, str(v.version), v.run_id, dict(v.tags),
                         sorted(held.get(str(v.version), []))) for v in found]
        return sorted(refs, key=lambda r: int(r.version))

    def _stored(self, ref: ModelRef) -> None:
        if ref.tag(TOMBSTONE):
            raise RegistryError(f"{ref.name} v{ref.version} is a tombstone: its weights were "
                                f"deleted on {ref.tag(TOMBSTONE)} (tainted, retention); its "
                                "tags, metrics and weights sha256 remain")

    def load(self, ref: ModelRef) -> tuple[Classifier, ModelSpec, TrainConfig]:
        """The module plus the recipe that built it, verified against the version's
        `model_sha256` tag (a replaced or modified file raises ModelFileError)."""
        from forgetflow.adapters.mlflow_model import load_model

        self._stored(ref)
        from forgetflow.core.training import ModelSpec, TrainConfig

        loaded = load_model(f"models:/{ref.name}/{ref.version}", ref.tag(MODEL_SHA_TAG),
                            self.uri)
        params = self.client.get_run(ref.run_id).data.params
        spec = ModelSpec(**json.loads(params["model_spec"]))
        recipe = TrainConfig(**json.loads(params["train_config"]))
        return loaded, spec, recipe

    def model_sha256(self, ref: ModelRef) -> str:
        """sha256 of the stored weights file, read back from the artifact store (what the
        tag and a receipt should both name)."""
        from mlflow.models import Model

        from forgetflow.adapters.mlflow_model import FLAVOR, download
        from forgetflow.core.modelfile import file_sha256

        self._stored(ref)
        local = download(f"models:/{ref.name}/{ref.version}", self.uri)
        conf = Model.load(f"{local}/MLmodel").flavors.get(FLAVOR) or {}
        return file_sha256(f"{local}/{conf.get('weights', 'missing')}") if conf else ""

    def register(self, name: str, model: Classifier, spec: ModelSpec, recipe: TrainConfig,
                 tags: dict[str, str], metrics: dict[str, float | None],
                 inputs: list[InputRef], params: dict[str, Any] | None = None,
                 fence: Callable[[], None] | None = None) -> ModelRef:
        """One run (params, metrics, inputs, model) and one new registered version carrying
        `tags` (built by forgetflow.pipeline.lineage) under the `forgetflow.` prefix.
        `fence`: raises unless the caller still holds its batch's lease; asked after the
        slow upload and just before the version is created (a refused run is deleted)."""
        import mlflow
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.data.sources import LocalArtifactDatasetSource
        from mlflow.models import Model

        from forgetflow.adapters import mlflow_model

        s3 = s3_settings()
        if s3 is not None:  # no run, no version unless the artifacts can be written
            ensure_bucket(s3)
        self._use_globally()
        run_params = {"model_spec": json.dumps(asdict(spec)),
                      "train_config": json.dumps(asdict(recipe)), **(params or {})}
        with mlflow.start_run(experiment_id=self._experiment_id(),
                              run_name=f"{tags['kind']}-{tags['data_version']}") as run:
            mlflow.log_params({k: str(v)[:6000] for k, v in run_params.items()})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
            mlflow.set_tags({TAG + k: v for k, v in tags.items()})
            for item in inputs:
                dataset = MetaDataset(LocalArtifactDatasetSource(item.source),
                                      name=item.name, digest=item.sha256[:32])
                mlflow.log_input(dataset, context=item.context,
                                 tags={"sha256": item.sha256, "size": str(item.size)})
            info = Model.log(None, flavor=mlflow_model, name="model", model=model, spec=spec,
                             recipe=recipe, validate_serving_input=False)
            sha = info.flavors[mlflow_model.FLAVOR]["sha256"]
            mlflow.set_tag(MODEL_SHA_TAG_FULL, sha)
            fault_point("registry-run-logged")
        if fence is not None:
            try:
                fence()
            except Exception:
                self.client.delete_run(run.info.run_id)
                raise
        version_tags = {**{TAG + k: v for k, v in tags.items()}, MODEL_SHA_TAG_FULL: sha}
        mv = self.client.create_model_version(name, info.model_uri, run.info.run_id,
                                              tags=version_tags) \
            if self.model_exists(name) else self._first_version(name, info.model_uri, run,
                                                                version_tags)
        fault_point("registry-version-created")
        return self.ref(name, str(mv.version))

    def version_of_batch(self, name: str, batch_id: str) -> ModelRef | None:
        """The version a deletion batch registered, if it got that far: a rerun of the batch
        registers nothing twice."""
        found = [r for r in self.versions(name) if r.tag("batch_id") == batch_id]
        if len(found) > 1:
            raise RegistryError(f"batch {batch_id} has {len(found)} versions of {name}")
        return found[0] if found else None

    def discard_runs_of_batch(self, batch_id: str) -> int:
        """Delete the runs a killed registration of this batch left without a version (they
        carry its lineage tags but name no model version). Returns how many."""
        exp = self.client.get_experiment_by_name(EXPERIMENT)
        if exp is None:
            return 0
        runs = self.client.search_runs([exp.experiment_id],
                                       f"tags.`{TAG}batch_id` = '{batch_id}'")
        for run in runs:
            self.client.delete_run(run.info.run_id)
        return len(runs)

    def batch_runs(self) -> dict[str, str]:
        """run id → batch id of every live run a deletion batch logged."""
        exp = self.client.get_experiment_by_name(EXPERIMENT)
        if exp is None:
            return {}
        runs = self.client.search_runs([exp.experiment_id], f"tags.`{TAG}batch_id` != ''")
        return {r.info.run_id: r.data.tags[TAG + "batch_id"] for r in runs}

    def _first_version(self, name: str, uri: str, run: Any, tags: dict[str, str]) -> Any:
        self.client.create_registered_model(name, description="forgetflow classifier: base "
                                            "and unlearned versions with lineage tags")
        return self.client.create_model_version(name, uri, run.info.run_id, tags=tags)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Refuses a tainted version (its data holds rows of an unlearned or done request);
        the version the alias leaves records when its last alias left (retention's clock)."""
        target, before = self.ref(name, version), self.alias(name, alias)
        if before is not None and before.version == target.version:
            return
        if target.tag(TAINTED) == "true":
            raise RegistryError(f"{name} v{version} is tainted (its data still holds rows of "
                                f"requests of batch {target.tag(TAINTED_BY)}): no alias may "
                                "point at it")
        self.client.set_registered_model_alias(name, alias, version)
        self._left(before)

    def delete_alias(self, name: str, alias: str, at: str | None = None) -> None:
        """`at` stamps when the alias left (default: now); a retention sweep passes its own
        clock so what it writes is never later than the time it judges expiry by."""
        before = self.alias(name, alias)
        if before is not None:
            self.client.delete_registered_model_alias(name, alias)
            self._left(before, at)

    def _left(self, before: ModelRef | None, at: str | None = None) -> None:
        if before is not None and not self.ref(before.name, before.version).aliases:
            self.set_tags(before, {ALIAS_LEFT_AT: at or utc_now()})

    def set_tags(self, ref: ModelRef, tags: dict[str, str]) -> None:
        """Lineage/retention tags on a version, under the `forgetflow.` prefix."""
        for key, value in tags.items():
            self.client.set_model_version_tag(ref.name, ref.version, TAG + key, value)

    def artifact_locations(self, ref: ModelRef) -> list[str]:
        """Where a version's files live: its model directory and its run's artifacts."""
        return [self.client.get_model_version_download_uri(ref.name, ref.version),
                self.client.get_run(ref.run_id).info.artifact_uri]

    def artifacts_stored(self, ref: ModelRef) -> bool:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        return any(get_artifact_repository(u).list_artifacts() for u in
                   self.artifact_locations(ref))

    def purge(self, ref: ModelRef) -> None:
        """Delete a version's weights and artifacts from the artifact store, leaving the
        version as a tombstone: its tags (lineage, weights sha256), run params and metrics."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        for location in self.artifact_locations(ref):
            get_artifact_repository(location).delete_artifacts()
        self.set_tags(ref, {TOMBSTONE: utc_now()})

    def metrics(self, ref: ModelRef) -> dict[str, float]:
        return dict(self.client.get_run(ref.run_id).data.metrics)

    def lineage(self, name: str, version: str) -> list[ModelRef]:
        """The version and its ancestors, newest first, following parent_version tags."""
        chain, seen = [], set()
        current: str | None = version
        while current and current not in seen:
            seen.add(current)
            ref = self.ref(name, current)
            chain.append(ref)
            current = ref.tag("parent_version") or None
        return chain
