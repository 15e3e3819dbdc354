"""Lineage: the one owner of what a model version records (the docs/design.md §8 tag schema, run
params, data inputs), what a requester is handed (receipts) and the batch report.

Nothing else writes `forgetflow.*` tag keys; the registry adapter only stores them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from forgetflow.adapters.datarepo import DataRepo, DataVersion
from forgetflow.adapters.registry import InputRef
from forgetflow.core.data.tensors import DataBundle
from forgetflow.core.params import Params

# docs/design.md §8 model-version tags (stored with the registry's `forgetflow.` prefix)
TAG_KEYS = ("kind", "parent_version", "deletion_request_ids", "data_version",
            "parent_data_version", "forget_set_size", "forget_set_sha256", "method", "gate")
# extra tags of an unlearned version: where the data lives, which batch made it
BATCH_TAG_KEYS = ("data_repo", "batch_id", "escalations")


def _complete(tags: dict[str, str]) -> dict[str, str]:
    missing = [k for k in TAG_KEYS if k not in tags]
    if missing:
        raise ValueError(f"lineage tags missing: {missing}")
    return tags


def base_tags(data_version: str) -> dict[str, str]:
    """A base model has no parent and forgot nothing; it is the gate's reference."""
    return _complete({"kind": "base", "parent_version": "", "deletion_request_ids": "",
                      "data_version": data_version, "parent_data_version": "",
                      "forget_set_size": "0", "forget_set_sha256": "", "method": "",
                      "gate": "passed"})


def unlearned_tags(*, batch_id: str, request_ids: list[int], parent_version: str,
                   parent_data_version: str, data_version: str, forget_size: int,
                   forget_sha256: str, method: str, gate: str, escalations: int,
                   data_repo: str) -> dict[str, str]:
    """An unlearned version: what it forgot, from which parent and data, and the verdict."""
    return _complete({
        "kind": "unlearned", "parent_version": parent_version,
        "deletion_request_ids": ",".join(map(str, request_ids)), "data_version": data_version,
        "parent_data_version": parent_data_version, "forget_set_size": str(forget_size),
        "forget_set_sha256": forget_sha256, "method": method, "gate": gate,
        "data_repo": data_repo, "batch_id": batch_id, "escalations": str(escalations)})


def data_inputs(repo: DataRepo, version: DataVersion, bundle: DataBundle,
                forget_ids: np.ndarray | None = None, forget_sha: str = "") -> list[InputRef]:
    """What MLflow's log_input records: names, digests and sizes only."""
    src = f"{repo.path}/manifest.csv@{version.tag}"
    refs = [InputRef("train", f"data-registry@{version.tag}:train", src,
                     version.info["manifest_sha256"], len(bundle.train))]
    if forget_ids is not None:
        refs.append(InputRef("retain", f"data-registry@{version.tag}:retain", src,
                             version.info["manifest_sha256"], len(bundle.train)))
        refs.append(InputRef("forget", "forget-set", f"{repo.path}/exclusions.csv@{version.tag}",
                             forget_sha, len(forget_ids)))
    return refs


def run_params(params: Params, attempt_method: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run params of an unlearned version: the method, its config and the gate thresholds."""
    return {"unlearn_method": attempt_method, "unlearn_config": config,
            **{f"gate.{k}": v for k, v in params.gate.model_dump().items()}}


# --- receipts: what a requester gets once a gate-passed version no longer carries their data.
# Built, signed (HMAC-SHA256) and verified in forgetflow.pipeline.receipts / receipt_check.

# --- the batch report (a Prefect markdown artifact)

def threshold_text(check: dict[str, Any]) -> str:
    """A check's bound as a reader sees it: "<= x" (a maximum) or ">= x" (a minimum)."""
    if check.get("max") is not None:
        return f"<= {check['max']}"
    if check.get("min") is not None:
        return f">= {check['min']}"
    return "—"


def batch_markdown(batch: dict[str, Any], checks: list[dict], decisions: list[dict]) -> str:
    """Requests, forget-set size, metrics, gate verdict, version."""
    lines = [f"# Deletion batch `{batch['batch_id']}`", "",
             f"- requests: {', '.join(map(str, batch['request_ids'])) or '—'}",
             f"- rejected: {batch.get('rejected') or '—'}",
             f"- forget set: {batch.get('forget_set_size')} samples "
             f"(sha256 `{str(batch.get('forget_set_sha256'))[:16]}…`)",
             f"- data version: {batch.get('parent_data_version')} → {batch.get('data_version')}",
             f"- model: `{batch['model_name']}` v{batch.get('parent_version')} → "
             f"v{batch.get('model_version')} (method `{batch.get('method')}`)",
             f"- **gate: {batch.get('gate')}**", "", "| check | value | threshold | passed |",
             "|---|---|---|---|"]
    for c in checks:
        value = "—" if c["value"] is None else f"{c['value']:.4f}"
        lines.append(f"| {c['check']} | {value} | {threshold_text(c)} | {c['passed']} |")
    lines += ["", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in sorted(batch.get("metrics", {}).items())
              if v is not None]
    lines += ["", "Attempts:", ""]
    lines += [f"{i + 1}. `{d['method']}` {d.get('config', {})}: gate {d['gate']} "
              f"({d['seconds']:.1f} s)" for i, d in enumerate(decisions)]
    return "\n".join(lines) + "\n"
