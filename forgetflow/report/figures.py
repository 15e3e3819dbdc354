"""Matplotlib figures from plain arrays (no models, no MLflow here).

Figures are built on `matplotlib.figure.Figure` with the Agg canvas: no pyplot global state,
no display needed, safe in worker threads. Matplotlib is imported only when a figure is made.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

GROUP_COLORS = {"forget": "#d62728", "third-party (held-out)": "#2ca02c", "test": "#1f77b4"}


def new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _ecdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xs = np.sort(values)
    return xs, np.arange(1, len(xs) + 1) / max(len(xs), 1)


def ecdf_figure(quantity: str, before: Mapping[str, np.ndarray],
                after: Mapping[str, np.ndarray], log_x: bool = False) -> Figure:
    """ECDFs of one per-sample quantity for each data group, before | after unlearning:
    after a good unlearning the forget curve sits on the held-out third-party curve."""
    fig = new_figure(9, 3.6)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (title, groups) in zip(axes, (("before (parent)", before),
                                          ("after (unlearned)", after)), strict=True):
        for name, values in groups.items():
            if len(values):
                xs, ys = _ecdf(np.asarray(values, dtype=float))
                ax.step(xs, ys, where="post", label=f"{name} (n={len(values)})",
                        color=GROUP_COLORS.get(name))
        ax.set_title(title)
        ax.set_xlabel(quantity)
        if log_x:
            ax.set_xscale("symlog", linthresh=1e-3)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of samples ≤ x")
    axes[1].legend(loc="lower right", fontsize=8)
    return fig


def roc_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """Membership-inference ROC: each curve is (member scores, non-member scores); the AUC of
    an attacker telling the forget set from unseen test data should fall towards 0.5."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig = new_figure(4.8, 4.2)
    ax = fig.subplots()
    for name, (members, non_members) in curves.items():
        y = np.concatenate([np.ones(len(members)), np.zeros(len(non_members))])
        s = np.concatenate([members, non_members])
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, s):.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="chance")
    ax.set(xlabel="false positive rate (test called member)",
           ylabel="true positive rate (forget called member)",
           title="MIA ROC: forget vs test, by confidence")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def class_accuracy_figure(classes: Sequence[str], before: np.ndarray, after: np.ndarray,
                          forgotten: Sequence[int]) -> Figure:
    """Per-class test accuracy before/after: forgotten classes drop to ~0, the others hold."""
    fig = new_figure(max(6.0, 0.6 * len(classes)), 3.6)
    ax = fig.subplots()
    x = np.arange(len(classes))
    ax.bar(x - 0.2, before, 0.4, label="before (parent)", color="#7f7f7f")
    ax.bar(x + 0.2, after, 0.4, label="after (unlearned)", color="#1f77b4")
    for k in forgotten:
        ax.axvspan(k - 0.5, k + 0.5, color="#d62728", alpha=0.12)
    ax.set_xticks(x, [f"{i}: {c}"[:14] for i, c in enumerate(classes)], rotation=45,
                  ha="right", fontsize=8)
    ax.set(ylabel="test accuracy", ylim=(0, 1.05),
           title="per-class test accuracy (shaded: forgotten)")
    ax.legend(fontsize=8)
    return fig


def backdoor_figure(asr_before: float, asr_after: float, images: np.ndarray,
                    pred_before: np.ndarray, pred_after: np.ndarray, target: int) -> Figure:
    """ASR before/after, and held-out test images stamped with the trigger with both models'
    predictions (never forget-set images: those are the requester's data)."""
    n = len(images)
    fig = new_figure(2.2 + 1.1 * max(n, 1), 3.0)
    grid = fig.add_gridspec(1, 1 + max(n, 1), width_ratios=[2.2] + [1.1] * max(n, 1))
    ax = fig.add_subplot(grid[0, 0])
    bars = ax.bar(["before", "after"], [asr_before, asr_after], color=["#d62728", "#2ca02c"])
    ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set(ylim=(0, 1.05), ylabel=f"ASR (→ class {target})", title="attack success")
    for i in range(n):
        sub = fig.add_subplot(grid[0, 1 + i])
        img = images[i]
        sub.imshow(img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0)),
                   cmap="gray" if img.shape[0] == 1 else None, vmin=0, vmax=255)
        sub.set_title(f"{int(pred_before[i])} → {int(pred_after[i])}", fontsize=9)
        sub.axis("off")
    fig.suptitle("triggered held-out test images: prediction before → after", fontsize=9)
    return fig


def depth_figure(checks: Sequence[dict]) -> Figure:
    """Each depth check of the gate: the forgotten side vs what the model never saw, after the
    same attack (relearned accuracy, re-implanted ASR, or few-shot recall vs the parent)."""
    fig = new_figure(1.0 + 2.6 * max(len(checks), 1), 3.2)
    for i, c in enumerate(checks):
        ax = fig.add_subplot(1, max(len(checks), 1), i + 1)
        ev = c["evidence"]
        sides = (["unlearned", "parent"] if ev["check"] == "class_feature_drop"
                 else ["forgotten", "never seen"])
        bars = ax.bar(sides, [ev["forgotten"], ev["control"]], color=["#1f77b4", "#7f7f7f"])
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
        verdict = "pass" if c["passed"] else "FAIL"
        ax.set(ylim=(0, 1.1), title=f"{c['check'].split(': depth ')[-1]}: {verdict}")
        ax.set_xlabel(c["check"].split(":")[0], fontsize=8)
    fig.suptitle("depth checks: the same attack on what was forgotten and on what never was",
                 fontsize=9)
    return fig


def bench_scatter_figure(points: Sequence[dict], scenarios: Sequence[str]) -> Figure:
    """Seconds vs avg_gap (log x) of every method, one panel per scenario: fast and close to
    Retrain is bottom-left."""
    cols = max(1, min(len(scenarios), 4))
    rows = (len(scenarios) + cols - 1) // cols or 1
    fig = new_figure(3.6 * cols, 3.2 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    methods = sorted({p["method"] for p in points})
    colors = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    for ax, scenario in zip(axes, scenarios, strict=False):
        for p in (p for p in points if p["scenario"] == scenario):
            ax.scatter(p["seconds"], p["avg_gap"], color=colors[p["method"]],
                       label=p["method"], s=28, alpha=0.85)
        ax.set_xscale("log")
        ax.set(title=scenario, xlabel="seconds (log)", ylabel="avg gap to Retrain (pt)")
        ax.grid(alpha=0.3, which="both")
    for ax in axes[len(scenarios):]:
        ax.axis("off")
    handles = {h.get_label(): h for ax in axes for h in ax.collections}
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside right upper",
                   fontsize=8)
    return fig


def scaling_figure(series: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]]) -> Figure:
    """Seconds vs training rows (log-log), one panel per model, one line per method: the
    gap between Retrain's line and a method's is its speed-up at that size."""
    models = list(series)
    fig = new_figure(4.2 * max(1, len(models)), 3.4)
    axes = np.atleast_1d(fig.subplots(1, max(1, len(models)), squeeze=False)).ravel()
    for ax, model in zip(axes, models, strict=False):
        for i, (method, points) in enumerate(series[model].items()):
            xs, ys = zip(*sorted(points), strict=True)
            ax.plot(xs, ys, marker="o", color=f"C{i % 10}", label=method)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set(title=model, xlabel="training rows (log)", ylabel="seconds (log)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return fig
