"""`forgetflow bench`: the typer command, kept apart so cli.py stays a thin index of verbs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer


def bench_command(
    dataset: str = typer.Option("fashion-mnist", help="fashion-mnist | digits | mnist | "
                                "cifar10 | folder:<path> (image folders at 3x32x32)"),
    data_root: str | None = typer.Option(None, help="folder of the dataset files"),
    scenario: str = typer.Option("class", help="class | random | subject | backdoor"),
    forget_class: int = typer.Option(None, help="class scenario: the label to forget"),
    fraction: float = typer.Option(0.1, help="random scenario: share of train to forget"),
    subjects: int = typer.Option(5, help="subject scenario: number of subjects to forget"),
    trigger: Path | None = typer.Option(None, help="backdoor scenario: trigger spec JSON"),
    poison_rate: float = typer.Option(0.01, help="backdoor scenario: share of train poisoned"),
    methods: str = typer.Option("dm,finetune", help="comma-separated registered methods "
                                "(identity, and logit_mask for class requests, always run)"),
    seeds: int = typer.Option(3, min=1, help="number of seeds (seed-offset .. +N-1)"),
    seed_offset: int = typer.Option(0, min=0, help="first seed; tune with >= 100, report 0"),
    epsilon_models: int = typer.Option(0, help="N models per side for the epsilon score "
                                       "(0 = off; 2..64; N >= 8 for reported numbers)"),
    epsilon_methods: str = typer.Option(None, help="rows carrying the epsilon score "
                                        "(default: every row)"),
    time_matched: str = typer.Option("", help="methods to rerun at dm's wall-clock"),
    model: str = typer.Option("cnn", help="cnn | resnet8 | resnet18"),
    epochs: int = typer.Option(None, help="override the reference recipe's epochs"),
    train_limit: int = typer.Option(None, help="a seeded random subset of N train samples"),
    cache_dir: Path = typer.Option(Path("bench-cache"), help="original/Retrain model cache"),
    json_out: Path | None = typer.Option(None, "--json", help="write the JSON result here"),
    runner: str = typer.Option("sequential", help="sequential | dask (a LocalCluster) | "
                               "dask:ADDRESS (a running distributed scheduler): where the "
                               "bench jobs run"),
) -> None:
    """Train the original and Retrain, run each method per seed, print mean ± std."""
    from forgetflow.bench.aggregate import format_table
    from forgetflow.bench.harness import BenchConfig, BenchError
    from forgetflow.bench.run import run_bench
    from forgetflow.bench.runner import RunnerError, RunnerSpec

    try:
        cfg = BenchConfig.build(
            dataset=dataset, data_root=data_root, scenario=scenario, forget_class=forget_class,
            fraction=fraction, subjects=subjects, trigger_file=trigger, poison_rate=poison_rate,
            methods=methods, seeds=seeds, model=model, epochs=epochs, train_limit=train_limit,
            cache_dir=cache_dir, seed_offset=seed_offset, epsilon_models=epsilon_models,
            epsilon_methods=epsilon_methods, time_matched=time_matched,
        )
        spec = RunnerSpec.parse(runner)
        if spec.kind == "dask":
            from forgetflow.cli.common import runtime_env

            runtime_env()  # the fan-out is a Prefect flow: keep its state in the workspace
        result = run_bench(cfg, spec)
    except (BenchError, RunnerError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(format_table(result))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2))
        print(f"wrote {json_out}", file=sys.stderr)


def register_bench(app: typer.Typer) -> None:
    app.command("bench")(bench_command)
