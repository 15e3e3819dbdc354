"""Checking a deletion request at submit time, before anything is stored.

Kept apart from the batch steps so `forgetflow request submit` imports no torch, MLflow or
Prefect for kinds that do not scan pixels (a backdoor scan needs the images and torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forgetflow.core.forget import KINDS, AlreadyRemoved, extract

if TYPE_CHECKING:
    from forgetflow.adapters.datarepo import DataRepo
    from forgetflow.adapters.registry import Registry
    from forgetflow.core.data.manifest import Manifest
    from forgetflow.core.requests import DeletionRequest


class SubmissionError(ValueError):
    """A request cannot be accepted against the current data version or registry."""


def _subjects_removed(repo: DataRepo, model_name: str, kind: str) -> frozenset[str]:
    if kind != "subject":
        return frozenset()
    from forgetflow.adapters.ledger import Ledger

    return frozenset(Ledger.open(repo.ws.ledger_url).subjects_removed(model_name))


def _rescanned(repo: DataRepo, registry: Registry, model_name: str, head,
               manifest: Manifest) -> Manifest | None:
    """Training rows the next batch's parent model holds that a re-scan of the source dropped
    (their files were deleted, or a request's batch failed): a request naming them (by id or
    by subject) is the next batch's to honour, not one for rows "never in the data"."""
    from forgetflow.adapters.registry import RegistryError
    from forgetflow.pipeline.parent import parent_of

    try:
        tag = parent_of(registry, model_name).tag("data_version")
    except RegistryError:
        return None
    if not tag or tag == head.tag:
        return None
    return repo.manifest(repo.version(tag)).train_rows_missing_from(manifest)


def validate_submission(request: DeletionRequest, repo: DataRepo, registry: Registry,
                        model_name: str) -> int:
    """Check a request before it is stored; returns how many training samples it names.
    Only kinds that scan pixels pay for loading the images."""
    if not registry.model_exists(model_name):
        raise SubmissionError(f"model: no registered model named {model_name!r}")
    if not repo.exists():
        raise SubmissionError("no data version yet: run `forgetflow data prepare`")
    head = repo.version()
    req = request.to_forget_request()
    removed = frozenset(repo.exclusions(head).ids)
    try:
        if KINDS[req.kind].needs_pixels:
            from forgetflow.adapters.dataversions import load_bundle

            bundle, manifest = load_bundle(repo, head)
            sel = extract([req], manifest, bundle.train.images, bundle.num_classes,
                          train_labels=bundle.train.labels)
        else:
            manifest = repo.manifest(head)
            subjects = _subjects_removed(repo, model_name, req.kind)
            if req.kind in ("samples", "subject"):
                dropped = _rescanned(repo, registry, model_name, head, manifest)
                if dropped is not None:
                    removed |= frozenset(dropped.ids.tolist())
                    subjects |= frozenset(map(str, dropped.subject.tolist()))
            manifest = manifest.without(removed)
            sel = extract([req], manifest, None, len(head.info.get("classes") or []) or None,
                          removed, subjects)
    except AlreadyRemoved:
        return 0  # earlier requests removed every row: the next batch honours it at once
    except ValueError as exc:  # ForgetSetError and TriggerError are ValueErrors
        field = KINDS[req.kind].selector  # the error names the field the user set
        raise SubmissionError(f"{field}: {exc} (data version {head.tag})") from exc
    return len(sel.forget_ids)
