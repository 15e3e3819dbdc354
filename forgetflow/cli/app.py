"""`forgetflow` — the CLI, docs/design.md §9. JSON (with --json) goes to stdout, everything else to
stderr. Commands that run flows import Prefect lazily, so `request submit` stays quick."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from forgetflow.cli import ops as cli_ops
from forgetflow.cli.audit import audit, retention
from forgetflow.cli.bench import register_bench
from forgetflow.cli.common import JSON, PARAMS, check_stack, emit, say, set_nproc, user_errors
from forgetflow.cli.receipt import receipt_app
from forgetflow.cli.report import report
from forgetflow.cli.status import status
from forgetflow.core.progress import quiet_for_json

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Right-to-be-forgotten pipeline for image classifiers.")
data_app = typer.Typer(no_args_is_help=True, help="Data versions in the workspace registry.")
request_app = typer.Typer(no_args_is_help=True, help="Deletion requests in the ledger.")
app.add_typer(data_app, name="data")
app.add_typer(request_app, name="request")
app.add_typer(receipt_app, name="receipt")
register_bench(app)
cli_ops.register(app, request_app)
app.command("status")(status)
app.command("audit")(audit)
app.command("retention")(retention)
app.command("report")(report)

@app.callback()
def main() -> None:
    """forgetflow: submit deletion requests, process them as batches, promote, serve."""
    quiet_for_json(sys.argv)


@data_app.command("prepare")
def data_prepare(source: str = typer.Option(None, help="override params data.source"),
                 allow_source_change: bool = typer.Option(
                     False, help="build from another source than the newest version's (the "
                     "images moved); refused otherwise"),
                 params: Path = PARAMS, as_json: bool = JSON) -> None:
    """Create data version 1 (or a new version if the source or params changed)."""
    with user_errors():
        check_stack()
        from forgetflow.adapters.datarepo import DataRepo
        from forgetflow.adapters.dataversions import prepare
        from forgetflow.adapters.workspace import Workspace
        from forgetflow.core.params import load_params

        data = load_params(params).data
        if source:
            data = data.model_copy(update={"source": source})
        version, created = prepare(DataRepo(Workspace.from_env()), data, allow_source_change)
        subjects = version.info.get("subjects_from", "synthetic")
        if subjects == "synthetic" and data.source.startswith(("folder:", "s3://")):
            say("no subjects.csv at the source root: subjects are the seeded synthetic "
                f"assignment (about {data.subject_size} images each)")
        if version.info.get("subjects_unmatched"):
            say(f"subjects.csv: {version.info['subjects_unmatched']} line(s) name no image "
                f"(first: {', '.join(version.info['subjects_unmatched_first'])}); they were "
                "ignored: fix or remove them so those images keep their subject")
        emit({"data_version": version.tag, "created": created, "rev": version.rev,
              "repo": version.repo, "rows": version.info["rows"],
              "dataset": version.info["source"], "subjects": subjects,
              "subjects_unmatched": version.info.get("subjects_unmatched", 0),
              "image_shape": version.info.get("image_shape")}, as_json,
             lambda p: f"data version {p['data_version']} "
                       f"({'created' if created else 'unchanged'}): {p['rows']}")


@data_app.command("poison")
def data_poison(trigger: Path = typer.Option(..., help="trigger spec JSON (docs/design.md §6)"),
                rate: float = typer.Option(..., help="share of training samples to poison"),
                seed: int = typer.Option(0), as_json: bool = JSON) -> None:
    """Backdoor studies: store BadNets-poisoned training rows as a new, DVC-tracked version."""
    with user_errors():
        check_stack()
        from forgetflow.adapters.datarepo import DataRepo
        from forgetflow.adapters.dataversions import poison_version
        from forgetflow.adapters.workspace import Workspace
        from forgetflow.core.triggers import TriggerSpec

        spec = TriggerSpec.from_file(trigger)
        version = poison_version(DataRepo(Workspace.from_env()), spec, rate, seed)
        emit({"data_version": version.tag, "poison": version.info["poison"]}, as_json)


@data_app.command("gc")
def data_gc(params: Path = PARAMS) -> None:
    """Purge data no kept version uses (forgotten poisoned rows) everywhere. Kept: the newest
    data version and those of aliased model versions (a next batch's parent); refused while a
    batch is open, since resuming it reads its own parent data."""
    with user_errors():
        check_stack()
        from forgetflow.adapters.datarepo import DataRepo
        from forgetflow.adapters.imagestore import prune_cache
        from forgetflow.adapters.workspace import Workspace
        from forgetflow.pipeline.settings import load_checked
        from forgetflow.pipeline.taint import gc_keep_from

        ws = Workspace.from_env()
        repo = DataRepo(ws)
        kept = repo.gc(gc_keep_from(ws, load_checked(params).registry.model_name))
        newest = repo.version().info.get("source_fingerprint")
        dropped = prune_cache(ws, {newest} if newest else set())
        say(f"purged objects no kept data version uses ({', '.join(kept)} kept; local cache "
            "and remote)"
            + (f"; {dropped} decoded image cache(s) of older source states" if dropped else ""))


@app.command("train")
def train(epochs: int = typer.Option(None, help="override params train.epochs"),
          source: str = typer.Option(None, help="override params data.source"),
          nproc: int = typer.Option(1, min=1, help="training processes (torchrun + DDP; "
                                    "gloo on CPU, NCCL on CUDA)"),
          params: Path = PARAMS, as_json: bool = JSON) -> None:
    """Flow `train`: prepare data, train, register the base model, alias it champion."""
    with user_errors():
        set_nproc(nproc)
        check_stack()
        from flows.train import train_flow
        from forgetflow.adapters.datarepo import DataRepo
        from forgetflow.adapters.dataversions import check_source
        from forgetflow.adapters.workspace import Workspace
        from forgetflow.pipeline.settings import load_checked

        data = load_checked(params).data  # refused here, before the flow starts
        check_source(DataRepo(Workspace.from_env()),
                     data.model_copy(update={"source": source}) if source else data)
        result = train_flow(str(params) if params else None, epochs, source)
        emit(result, as_json, lambda r: f"{r['model_name']} v{r['model_version']} is champion "
                                        f"(data {r['data_version']}, test acc "
                                        f"{r['metrics']['test_acc']:.4f})")

