"""The figures of one deletion batch: computed from the parent and the unlearned model on the
batch's data, logged to the batch's MLflow run under `figures/`, linked from the Prefect
markdown artifact and embedded in `forgetflow report`.

Only aggregate curves of the forget set are drawn; the triggered-example grid uses held-out
test images stamped with the trigger. No forget-set image or id leaves this module.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from forgetflow.report import figures

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

    from forgetflow.core.data.tensors import DataBundle, ImageSet
    from forgetflow.pipeline.batch import Stage

FIGURE_DIR = "figures"
GROUP_CAP = 5000  # per-group sample for curves: enough for smooth ECDFs, cheap to evaluate
GRID_SIZE = 8
MLFLOW_UI_ENV = "FORGETFLOW_MLFLOW_UI_URL"
DEFAULT_MLFLOW_UI = "http://127.0.0.1:5000"
TITLES = {"confidence_ecdf": "confidence ECDF (forget / third-party / test, before → after)",
          "loss_ecdf": "loss ECDF (forget / third-party / test, before → after)",
          "mia_roc": "membership-inference ROC (forget vs test)",
          "class_accuracy": "per-class test accuracy before/after",
          "backdoor": "ASR before/after and triggered held-out examples",
          "depth_checks": "depth checks: forgotten vs never-seen after the same attack"}


def _cap(data: ImageSet, seed: int = 0) -> ImageSet:
    if len(data) <= GROUP_CAP:
        return data
    rng = np.random.default_rng(seed)
    return data.take(np.sort(rng.choice(len(data), GROUP_CAP, replace=False)))


def _scores(model: torch.nn.Module, data: ImageSet) -> dict[str, np.ndarray]:
    from forgetflow.core.metrics import per_sample_loss, predict_logits, true_class_confidence

    logits = predict_logits(model, data.images)
    return {"confidence": true_class_confidence(logits, data.labels),
            "loss": per_sample_loss(logits, data.labels), "pred": logits.argmax(1).numpy()}


def kept_classes(data: ImageSet, forgotten: list[int]) -> ImageSet:
    """Rows of the classes the model still predicts (a forgotten class's test rows would
    show as a step at zero confidence and hide the comparison)."""
    return data.where(~np.isin(data.labels.numpy(), forgotten)) if forgotten else data


def forget_rows(stages: list[Stage]) -> ImageSet:
    """The rows the confidence curves compare with unseen data: those of sample and subject
    requests when the batch has any (a forgotten class or a backdoor has its own figure, and
    its rows would swamp the curves), else the whole forget set."""
    from forgetflow.pipeline.batch import concat

    plain = [s.target.forget for s in stages if s.target.scenario.hides_membership]
    return concat(plain or [s.target.forget for s in stages])


def build_batch_figures(parent: torch.nn.Module, model: torch.nn.Module, stages: list[Stage],
                        bundle: DataBundle, forgotten: list[int],
                        checks: list[dict] | None = None) -> dict[str, Figure]:
    """Every figure that applies to this batch, by artifact name (without `.png`)."""
    groups = {"forget": _cap(forget_rows(stages)),
              "third-party (held-out)": _cap(bundle.third_party),
              "test": _cap(kept_classes(bundle.test, forgotten))}
    before = {g: _scores(parent, d) for g, d in groups.items()}
    after = {g: _scores(model, d) for g, d in groups.items()}
    out = {
        "confidence_ecdf": figures.ecdf_figure(
            "true-class confidence", {g: s["confidence"] for g, s in before.items()},
            {g: s["confidence"] for g, s in after.items()}),
        "loss_ecdf": figures.ecdf_figure(
            "cross-entropy loss", {g: s["loss"] for g, s in before.items()},
            {g: s["loss"] for g, s in after.items()}, log_x=True),
        "mia_roc": figures.roc_figure({
            name: (scores["forget"]["confidence"], scores["test"]["confidence"])
            for name, scores in (("before (parent)", before), ("after (unlearned)", after))}),
    }
    if forgotten:
        out["class_accuracy"] = class_accuracy(parent, model, bundle, forgotten)
    trigger = next((s.target.trigger for s in stages if s.target.trigger is not None), None)
    if trigger is not None:
        out["backdoor"] = backdoor(parent, model, bundle.test, trigger)
    depth = [c for c in checks or [] if c.get("evidence")]
    if depth:
        out["depth_checks"] = figures.depth_figure(depth)
    return out


def class_accuracy(parent: torch.nn.Module, model: torch.nn.Module, bundle: DataBundle,
                   forgotten: list[int]) -> Figure:
    test = _cap(bundle.test)
    labels = test.labels.numpy()
    rows = []
    for m in (parent, model):
        pred = _scores(m, test)["pred"]
        rows.append(np.array([(pred[labels == k] == k).mean() if (labels == k).any() else 0.0
                              for k in range(bundle.num_classes)]))
    return figures.class_accuracy_figure(bundle.classes, rows[0], rows[1], forgotten)


def triggered_examples(test: ImageSet, spec: Any, n: int = GRID_SIZE) -> ImageSet:
    """The first `n` held-out test images whose label is not the target, stamped."""
    from forgetflow.core.triggers import stamp

    keep = np.flatnonzero(test.labels.numpy() != spec.target)[:n]
    chosen = test.take(keep)
    return chosen.with_images(stamp(chosen.images, spec))


def backdoor(parent: torch.nn.Module, model: torch.nn.Module, test: ImageSet,
             spec: Any) -> Figure:
    from forgetflow.core.metrics import attack_success_rate

    grid = triggered_examples(test, spec)
    capped = _cap(test)
    return figures.backdoor_figure(
        attack_success_rate(parent, capped, spec), attack_success_rate(model, capped, spec),
        grid.images.numpy(), _scores(parent, grid)["pred"], _scores(model, grid)["pred"],
        spec.target)


def log_figures(run_id: str, figs: dict[str, Figure]) -> list[str]:
    """PNG artifacts `figures/<name>.png` on the batch's run; returns their artifact paths."""
    from forgetflow.adapters.registry import Registry
    from forgetflow.adapters.workspace import Workspace

    client = Registry(Workspace.from_env()).client
    paths = []
    for name, fig in figs.items():
        path = f"{FIGURE_DIR}/{name}.png"
        client.log_figure(run_id, fig, path)
        paths.append(path)
    return paths


def figures_markdown(run_id: str, experiment_id: str, artifact_uri: str,
                     paths: list[str]) -> str:
    """Links for the Prefect artifact: the MLflow UI page of each figure and its stored URI."""
    ui = os.environ.get(MLFLOW_UI_ENV, DEFAULT_MLFLOW_UI).rstrip("/")
    lines = ["", "## Figures", "",
             f"Logged on MLflow run `{run_id}` (start the UI with `mlflow ui "
             f"--backend-store-uri <tracking uri>`; {MLFLOW_UI_ENV} sets its address):", ""]
    for path in paths:
        name = path.rsplit("/", 1)[-1].removesuffix(".png")
        lines.append(f"- [{TITLES.get(name, name)}]({ui}/#/experiments/{experiment_id}/runs/"
                     f"{run_id}/artifacts/{path}) · `{artifact_uri}/{path}`")
    return "\n".join(lines) + "\n"


def publish_batch_figures(run_id: str, parent: torch.nn.Module, model: torch.nn.Module,
                          stages: list[Stage], bundle: DataBundle,
                          forgotten: list[int], checks: list[dict] | None = None) -> str:
    """Build, log and link the batch's figures; returns the markdown section."""
    from forgetflow.adapters.registry import Registry
    from forgetflow.adapters.workspace import Workspace

    figs = build_batch_figures(parent, model, stages, bundle, forgotten, checks)
    paths = log_figures(run_id, figs)
    run = Registry(Workspace.from_env()).client.get_run(run_id)
    return figures_markdown(run_id, run.info.experiment_id, run.info.artifact_uri, paths)
