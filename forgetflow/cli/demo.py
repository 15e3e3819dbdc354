"""`forgetflow demo` (what `make run` runs): the whole story on the embedded workspace.

prepare → train → submit a subject, a class and a samples request → one batch → promote →
print the new champion's lineage and check the data version no longer holds the ids.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.registry import Registry
from forgetflow.adapters.stack import redact
from forgetflow.adapters.workspace import Workspace
from forgetflow.core.data.sources import DEBIAN_FASHION_MNIST
from forgetflow.core.ids import redacted_payload
from forgetflow.core.params import Params
from forgetflow.core.requests import DeletionRequest
from forgetflow.pipeline.settings import load_checked
from forgetflow.pipeline.submission import validate_submission


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def demo_source(params: Params, override: str | None = None) -> str:
    """`--source` when given; else Fashion-MNIST from Debian's package when present, else
    sklearn's bundled digits."""
    if override:
        return override
    if params.data.source == "fashion-mnist" and params.data.root is None \
            and not DEBIAN_FASHION_MNIST.is_dir():
        say(f"{DEBIAN_FASHION_MNIST} is absent: the demo uses the bundled digits instead")
        return "digits"
    return params.data.source


def demo_requests(repo: DataRepo, samples: int, seed: int = 0) -> list[DeletionRequest]:
    """A subject, a class and a random sample of ids, all from the newest data version."""
    head = repo.version()
    m = repo.manifest(head).without(repo.exclusions(head).ids)
    train = m.split == "train"
    label = int(np.unique(m.labels[train])[-1])
    others = train & (m.labels != label)
    subject = str(sorted(set(m.subject[others].tolist()) - {""})[0])  # "": not in subjects.csv
    pool = m.ids[others & (m.subject != subject)]
    count = min(samples, len(pool) // 4)  # small folders: leave every class most of its rows
    ids = np.random.default_rng(seed).choice(pool, count, replace=False)
    return [DeletionRequest(kind="subject", subject=subject),
            DeletionRequest(kind="class", label=label),
            DeletionRequest(kind="samples", ids=sorted(ids.tolist()))]


def print_lineage(registry: Registry, ledger: Ledger, repo: DataRepo, name: str,
                  version: str) -> None:
    """Champion → parents, each with its requests, data version and gate (to stdout)."""
    print(f"\nLineage of {name}@champion (v{version}):")
    for ref in registry.lineage(name, version):
        metrics = registry.metrics(ref)
        print(f"  v{ref.version} [{ref.tag('kind')}] data {ref.tag('data_version')}"
              f" (from {ref.tag('parent_data_version') or '-'}), method "
              f"{ref.tag('method') or 'train'}, gate {ref.tag('gate')}, test_acc "
              f"{metrics.get('test_acc', float('nan')):.4f}, weights sha256 "
              f"{(ref.tag('model_sha256') or '?')[:12]}…")
        rids = [int(r) for r in (ref.tag("deletion_request_ids") or "").split(",") if r]
        for rid in rids:
            req = ledger.get(rid)
            print(f"      request {rid}: {req.kind} {redacted_payload(req.payload)} → "
                  f"{req.status}, receipt "
                  f"names v{(req.receipt or {}).get('model_version')}")
        if rids:
            print(f"      forget set: {ref.tag('forget_set_size')} samples, sha256 "
                  f"{ref.tag('forget_set_sha256')[:16]}…")
            depth = {k: v for k, v in metrics.items() if k.startswith("depth.")}
            stages = {k.split(".")[0] for k in metrics if "." in k and k not in depth}
            for stage in sorted(stages) or [""]:
                key = f"{stage}." if stage else ""
                print(f"      {stage or 'forget set'}: forget_acc "
                      f"{metrics.get(key + 'forget_acc', float('nan')):.4f}, third_party_auc "
                      f"{metrics.get(key + 'third_party_auc', float('nan')):.4f}")
            if depth:
                print("      depth checks: " + ", ".join(
                    f"{k.removeprefix('depth.')} {v:+.4f}" for k, v in sorted(depth.items())))
            head = repo.version(ref.tag("data_version"))
            gone = repo.exclusions(head).ids
            still = set(repo.manifest(head).ids.tolist()) & gone
            print(f"      data {head.tag} (dvc.api read-back): {len(gone)} excluded ids, "
                  f"{len(still)} of them still in the manifest")


def run_demo(params_file: str | None = None, source_override: str | None = None) -> None:
    from flows.process_deletions import process_deletions
    from flows.promote import promote_flow
    from flows.train import train_flow

    started = time.perf_counter()
    params = load_checked(params_file)
    ws = Workspace.from_env().ensure()
    name = params.registry.model_name
    source = demo_source(params, source_override)
    say(f"workspace: {ws.root}\ndemo recipe: {params.demo.epochs} epoch(s) instead of "
        f"{params.train.epochs} (params.yaml demo.epochs) so `make run` takes minutes")

    # the demo may be rerun on other data (make run DATA=...): it starts its lineage over
    trained = train_flow(params_file, params.demo.epochs, source, allow_source_change=True)
    say(f"[1/4] {name} v{trained['model_version']} trained on {source} "
        f"(data {trained['data_version']}), test acc {trained['metrics']['test_acc']:.4f}")

    repo, registry, ledger = DataRepo(ws), Registry(ws), Ledger.open(ws.ledger_url)
    ids_file = ws.root / "demo-sample-ids.txt"
    for request in demo_requests(repo, params.demo.samples):
        validate_submission(request, repo, registry, name)
        view, _ = ledger.submit(request, name)
        if request.kind == "samples":
            Path(ids_file).write_text("\n".join(request.ids) + "\n")
        say(f"[2/4] submitted request {view.id}: {request.kind} "
            f"{redacted_payload(request.payload())}")

    batch = process_deletions(name, params_file)
    t = batch["timings"]
    say(f"[3/4] batch {batch['batch_id']}: gate {batch['gate']}, {name} "
        f"v{batch['model_version']}, data {batch['data_version']}; {t['total']:.1f} s = "
        f"unlearning {t['unlearn_compute']:.1f} s + evaluation {t['evaluate']:.1f} s + "
        f"pipeline {t['overhead']:.1f} s")
    if batch["gate"] != "passed":
        say("the gate failed even after escalation: nothing to promote")
        raise SystemExit(1)
    promoted = promote_flow(name, None, params_file)
    say(f"[4/4] champion: v{promoted['previous_champion']} → v{promoted['champion']}")
    print_lineage(registry, ledger, repo, name, promoted["champion"])
    print(f"\nload it anywhere (MLFLOW_TRACKING_URI={redact(ws.mlflow_tracking_uri)}); no "
          "pickle, the weights' sha256 is checked:\n"
          f"  mlflow.pyfunc.load_model('models:/{name}@champion').predict(x)  "
          "# float32 [N, C, H, W] in [0, 1] → logits\n"
          f"  forgetflow.load_model('models:/{name}@champion')  # the torch.nn.Module")
    print(f"demo finished in {time.perf_counter() - started:.0f} s")
