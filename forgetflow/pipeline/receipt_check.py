"""`forgetflow receipt verify`: re-derive every claim of a signed receipt from the three
systems that hold the truth, and list what disagrees.

- the receipt itself: signature (HMAC-SHA256, workspace or FORGETFLOW_RECEIPT_KEY key);
- the ledger: request id, kind, selector digest, status and model version;
- the MLflow registry: the version exists, its lineage tags and run metrics, and the sha256 of
  the weights file actually stored;
- the data repo: both data versions (tags → the same git revs), the exclusion manifest's rows
  for this request, and the forget set recomputed from the two manifests;
- the serving versions the receipt names (what answered traffic when it was issued): their
  weights, and that their data versions no longer hold the request's rows.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

from forgetflow.adapters.datarepo import DataPruned, DataRepo, DataRepoError, DataVersion
from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.registry import (
    MODEL_SHA_TAG,
    TOMBSTONE,
    ModelRef,
    Registry,
    RegistryError,
)
from forgetflow.adapters.workspace import Workspace
from forgetflow.pipeline import receipts as rc

# registry tag → receipt field that must carry the same value
TAG_FIELDS = ("data_version", "parent_data_version", "forget_set_size", "forget_set_sha256",
              "method", "parent_version", "model_sha256", "batch_id")


@dataclass(frozen=True)
class Check:
    """One claim: where it was checked, what the receipt says and what was found."""

    source: str
    name: str
    ok: bool
    receipt: Any = None
    found: Any = None

    def line(self) -> str:
        if self.ok:
            return f"{'ok':8} {self.source}: {self.name}"
        if self.receipt is None:  # nothing to compare with: the claim itself is missing
            return f"{'MISSING':8} {self.source}: {self.name}: {self.found}"
        return (f"{'MISMATCH':8} {self.source}: {self.name}: receipt says {self.receipt!r}, "
                f"found {self.found!r}")


def _same(source: str, name: str, expected: Any, found: Any) -> Check:
    return Check(source, name, str(expected) == str(found), expected, found)


def _key_checks(ws: Workspace, receipt: dict[str, Any]) -> list[Check]:
    """Never creates a key: verifying with a fresh random key would only mislead."""
    if os.environ.get(rc.KEY_ENV) is None and not (ws.root / rc.KEY_FILE).exists():
        return [Check("receipt", "signing key available", False, receipt.get("key_id"),
                      f"no {rc.KEY_ENV} and no {ws.root / rc.KEY_FILE}")]
    try:
        key = rc.receipt_key(ws)
    except rc.ReceiptError as exc:
        return [Check("receipt", "signing key readable", False, receipt.get("key_id"), str(exc))]
    signed = rc.signature_ok(receipt, key)
    found = ("content as signed" if signed else "content changed after signing"
             if receipt.get("key_id") == rc.key_id(key) else "signed with another key")
    return [_same("receipt", "signed with this workspace's key", receipt.get("key_id"),
                  rc.key_id(key)),
            Check("receipt", "signature matches the content", signed, "content as signed",
                  found)]


def _ledger_checks(ledger: Ledger, request_id: int, receipt: dict[str, Any]) -> list[Check]:
    view = ledger.get(request_id)
    return [
        _same("ledger", "request id", receipt.get("request_id"), view.id),
        _same("ledger", "kind", receipt.get("kind"), view.kind),
        _same("ledger", "selector sha256", receipt.get("selector_sha256"),
              rc.selector_sha256(view, ledger.sample_ids(request_id))),
        _same("ledger", "status", receipt.get("status"), view.status),
        _same("ledger", "model version", receipt.get("model_version"), view.model_version),
    ]


def _weights(registry: Registry, ref: ModelRef, name: str, expected: Any) -> Check:
    """The stored weights' sha256; for a tombstone (weights deleted by retention) the digest
    the version's tag carries stands in, and the check says so."""
    if ref.tag(TOMBSTONE):
        return _same("registry", f"{name}: weights deleted by retention on "
                     f"{ref.tag(TOMBSTONE)} (tombstone), checked against the version's "
                     f"{MODEL_SHA_TAG} tag", expected, ref.tag(MODEL_SHA_TAG))
    return _same("registry", name, expected, registry.model_sha256(ref))


def _registry_checks(registry: Registry, receipt: dict[str, Any]) -> list[Check]:
    try:
        ref: ModelRef = registry.ref(str(receipt.get("model_name")),
                                     str(receipt.get("model_version")))
    except RegistryError as exc:
        return [Check("registry", "model version exists", False, receipt.get("model_version"),
                      str(exc))]
    checks = [_same("registry", f"tag forgetflow.{t}", receipt.get(t), ref.tag(t))
              for t in TAG_FIELDS]
    checks.append(Check("registry", "tag forgetflow.gate is passed",
                        ref.tag("gate") == "passed" == receipt.get("gate"), receipt.get("gate"),
                        ref.tag("gate")))
    listed = (ref.tag("deletion_request_ids") or "").split(",")
    earlier = [str(r) for r in receipt.get("rows_removed_earlier_by") or []]
    checks.append(Check("registry", "tag forgetflow.deletion_request_ids lists the request "
                        "(or the earlier request that removed its rows)",
                        str(receipt.get("request_id")) in listed or bool(set(earlier)
                                                                        & set(listed)),
                        [receipt.get("request_id"), *earlier], ref.tag("deletion_request_ids")))
    checks.append(_weights(registry, ref, "stored weights file sha256",
                           receipt.get("model_sha256")))
    run_metrics = registry.metrics(ref)
    for name, value in (receipt.get("gate_metrics") or {}).items():
        found = run_metrics.get(name)
        ok = found is not None and math.isclose(float(value), found, rel_tol=1e-9, abs_tol=1e-12)
        checks.append(Check("registry", f"run metric {name}", ok, value, found))
    return checks


def _request_rows(repo: DataRepo, version: DataVersion, rid: int,
                  named: list[str]) -> tuple[DataVersion, list[str], set[str]]:
    """(the version read, the request's rows in its exclusion manifest, those of them still in
    its manifest). Exclusions only grow, so where `data gc` purged the version's files the
    newest version stands in."""
    def read(v: DataVersion) -> tuple[list[str], set[str]]:
        excluded = rc.excluded_for(repo.exclusions(v), rid, named)
        return excluded, set(excluded) & set(repo.manifest(v).ids.tolist())

    try:
        return version, *read(version)
    except DataPruned:
        newest = repo.version()
        return newest, *read(newest)


def _serving_checks(registry: Registry, repo: DataRepo, receipt: dict[str, Any],
                    named: list[str]) -> list[Check]:
    """Each serving version the receipt names exists with those weights and was built on a
    data version that no longer holds this request's rows."""
    serving = receipt.get("serving")
    if not serving:
        return [Check("registry", "receipt names the serving versions", False, serving,
                      "none")]
    checks = []
    rid = int(receipt.get("request_id", -1))
    for s in serving:
        where = f"serving {s.get('alias')} v{s.get('model_version')}"
        try:
            ref = registry.ref(str(receipt.get("model_name")), str(s.get("model_version")))
            data = repo.version(str(s.get("data_version")))
        except (RegistryError, DataRepoError) as exc:
            checks.append(Check("registry", f"{where} exists", False, s, str(exc)))
            continue
        checks += [_weights(registry, ref, f"{where}: stored weights sha256",
                            s.get("model_sha256")),
                   _same("registry", f"{where}: data version", s.get("data_version"),
                         ref.tag("data_version"))]
        _, excluded, still = _request_rows(repo, data, rid, named)
        checks.append(Check("data repo", f"{where}: built on data without the request's rows",
                            bool(excluded) and not still, receipt.get("request_excluded_rows"),
                            f"{len(excluded)} excluded, {len(still)} still in {data.tag}"))
    return checks


def _data_checks(repo: DataRepo, ledger: Ledger, receipt: dict[str, Any],
                 named: list[str]) -> list[Check]:
    try:
        after = repo.version(str(receipt.get("data_version")))
        before = repo.version(str(receipt.get("parent_data_version")))
    except DataRepoError as exc:
        return [Check("data repo", "data versions exist", False, receipt.get("data_version"),
                      str(exc))]
    checks = [_same("data repo", f"{after.tag} git rev", receipt.get("data_rev"), after.rev),
              _same("data repo", f"{before.tag} git rev", receipt.get("parent_data_rev"),
                    before.rev)]
    rid = int(receipt.get("request_id", -1))
    where, excluded, still = _request_rows(repo, after, rid, named)
    note = "" if where == after else f" (from {where.tag}: {after.tag}'s files purged by gc)"
    checks += [_same("data repo", f"exclusion manifest rows of this request{note}",
                     receipt.get("request_excluded_rows"), len(excluded)),
               _same("data repo", f"exclusion manifest ids of this request (sha256){note}",
                     receipt.get("request_excluded_sha256"), rc.ids_sha256(excluded))]
    missing = sorted(set(named) - set(excluded))
    checks.append(Check("data repo", "every requested sample id is excluded", not missing,
                        len(named), f"{len(missing)} not excluded" if missing else len(named)))
    checks.append(Check("data repo", f"excluded ids absent from {where.tag}'s manifest",
                        not still, 0, len(still)))
    return checks + _forget_set_checks(repo, after, before, receipt)


def _forget_set_checks(repo: DataRepo, after: Any, before: Any,
                       receipt: dict[str, Any]) -> list[Check]:
    """The forget set recomputed from both manifests. Where `data gc` purged one it cannot be
    recomputed: the output says so, and the receipt's digest stands checked against the
    version's lineage tag alone (a registry check above)."""
    try:
        after_m, before_m = repo.manifest(after), repo.manifest(before)
    except DataPruned:
        return [Check("data repo", f"forget set not recomputed: {before.tag}/{after.tag} "
                      "manifests purged by `data gc` (digest checked against the registry "
                      "tag only)", True, receipt.get("forget_set_sha256"), "purged")]
    forget = (set(before_m.ids[before_m.split == "train"].tolist())
              - set(after_m.ids[after_m.split == "train"].tolist()))
    return [_same("data repo", "forget set size (recomputed from manifests)",
                  receipt.get("forget_set_size"), len(forget)),
            _same("data repo", "forget set sha256 (recomputed from manifests)",
                  receipt.get("forget_set_sha256"), rc.ids_sha256(forget))]


def _named(repo: DataRepo, ledger: Ledger, view: Any, receipt: dict[str, Any]) -> list[str]:
    """What the request names that earlier requests may have removed, read from the newest
    exclusion manifest (it only grows, and gc never purges the newest)."""
    if view.kind not in ("samples", "subject"):
        return []
    try:
        return rc.named_ids(ledger, view, repo.exclusions(repo.version()))
    except DataRepoError:
        return []


def verify_receipt(ws: Workspace, request_id: int) -> dict[str, Any]:
    """{"id", "verified", "checks": [...], "mismatches": [...]}; a request without a receipt
    (not done) is a failed verification, an unknown id a LedgerError."""
    ledger = Ledger.open(ws.ledger_url)
    view = ledger.get(request_id)
    receipt = view.receipt
    if not receipt:
        found = (f"none: the request was rejected ({view.reason}), so it never gets one"
                 if view.status == "rejected" else
                 f"none yet: the request is {view.status}, and a receipt is written only once "
                 "it is done (the serving model no longer holds its data)")
        checks = [Check("ledger", "request has a receipt", False, None, found)]
    else:
        registry, repo = Registry(ws), DataRepo(ws)
        named = _named(repo, ledger, view, receipt)
        checks = (_key_checks(ws, receipt) + _ledger_checks(ledger, request_id, receipt)
                  + _registry_checks(registry, receipt)
                  + _serving_checks(registry, repo, receipt, named)
                  + _data_checks(repo, ledger, receipt, named))
    bad = [c for c in checks if not c.ok]
    return {"id": request_id, "verified": not bad, "checks": [asdict(c) for c in checks],
            "mismatches": [c.line() for c in bad], "lines": [c.line() for c in checks]}
