"""What the audit report says about a number: its name in words, its unit, the verdict of a
gate check in one plain sentence. A reader of the report is a data-protection officer, not one
of forgetflow's authors, so nothing here prints a raw float or a dotted metric name alone."""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from typing import Any

# metric -> (words, unit): pct = share shown as %, pp = a difference of shares, in points
METRICS: dict[str, tuple[str, str]] = {
    "forget_acc": ("accuracy on the forgotten rows", "pct"),
    "retain_acc": ("accuracy on the kept training rows", "pct"),
    "test_acc": ("test accuracy", "pct"),
    "test_acc_kept": ("test accuracy on the kept classes", "pct"),
    "test_acc_remaining": ("test accuracy on the kept classes", "pct"),
    "parent_test_acc_kept": ("the parent's test accuracy on the kept classes", "pct"),
    "third_party_auc": ("how well a discriminator tells forgotten rows from unseen ones "
                        "(AUC; 0.50 = not at all)", "auc"),
    "mia_efficacy": ("forgotten rows a membership attack calls non-members", "pct"),
    "mia_loss_acc": ("accuracy of a loss-threshold membership attack", "pct"),
    "asr": ("stamped test images the trigger still sends to its target class", "pct"),
    "test_acc_drop": ("drop in test accuracy on the kept classes vs the parent", "pp"),
    "relearn_gap": ("how much faster forgotten rows come back than unseen rows under a short "
                    "fine-tune", "pp"),
    "reimplant_gap": ("how much faster the removed trigger re-implants than a never-seen one",
                      "pp"),
    "class_feature_drop": ("how much less readable the class is from the model's features "
                           "than from the parent's", "pp"),
    "unlearn_seconds": ("seconds spent unlearning", "s"),
    "unlearn_seconds_total": ("seconds spent unlearning, every attempt", "s"),
    "forget_set_size": ("forgotten rows", "count"),
}


UNIT_FORMATS = {
    "pct": lambda v: f"{v * 100:.1f}%", "pp": lambda v: f"{v * 100:+.1f} pt",
    "auc": lambda v: f"{v:.2f}", "s": lambda v: f"{v:.1f} s", "count": lambda v: f"{int(v):,}",
}


def base_metric(name: str) -> str:
    """`class-3.forget_acc` or `depth.samples.relearn_gap` → the metric it measures."""
    return name.rsplit(".", 1)[-1].rsplit(" ", 1)[-1]


def words(name: str) -> str:
    """The metric in words; a per-stage metric (`class-3.forget_acc`) names its stage."""
    said = METRICS.get(base_metric(name), (name.replace("_", " "), ""))[0]
    stage = name.rsplit(".", 1)[0] if "." in name else ""
    return f"{stage.removeprefix('depth.')} · {said}" if stage else said


def number(name: str, value: Any) -> str:
    """A value as a person reads it: % with one decimal, AUCs with two, seconds with one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    unit = METRICS.get(base_metric(name), ("", ""))[1]
    if unit in UNIT_FORMATS:
        return UNIT_FORMATS[unit](value)
    return f"{int(value):,}" if isinstance(value, int) else f"{value:.3g}"


def bound(check: dict[str, Any]) -> str:
    """The threshold with its direction, in the metric's unit."""
    name = check["check"]
    if check.get("max") is not None:
        return f"at most {number(name, check['max'])}"
    if check.get("min") is not None:
        return f"at least {number(name, check['min'])}"
    return "—"


def stage_of(check: str) -> str:
    """`class-3: forget_acc` → `class-3`; checks without a stage judge the whole batch."""
    return check.split(": ", 1)[0] if ": " in check else "utility"


def stage_title(stage: str, classes: list[str] | None = None) -> str:
    if stage.startswith("class-"):
        label = int(stage.split("-", 1)[1])
        name = f" ({classes[label]})" if classes and label < len(classes) \
            and classes[label] != str(label) else ""
        return f"Class {label}{name} forgotten"
    if stage.startswith("backdoor-"):
        return f"Backdoor of request {stage.split('-', 1)[1]} removed"
    if stage == "samples":
        return "Named samples and subjects forgotten"
    return "Utility kept"


def sentence(check: dict[str, Any], classes: list[str] | None = None) -> str:
    """One plain sentence saying what the check measured and how it compares."""
    name, value = check["check"], check.get("value")
    metric = base_metric(name)
    shown, limit = number(name, value), bound(check)
    stage = stage_of(name)
    if check.get("note", "").startswith("not gated"):
        return f"Not judged: {check['note'].removeprefix('not gated: ')}."
    if value is None:
        return f"{METRICS.get(metric, (metric, ''))[0].capitalize()}: not measured."
    ok = check.get("passed")
    if metric == "forget_acc" and stage.startswith("class-"):
        label = stage_title(stage, classes).removesuffix(" forgotten")
        return (f"{label} is {'no longer' if ok else 'still'} predicted: {shown} of its rows "
                f"are classified as it ({limit}).")
    if metric == "asr":
        return (f"The trigger {'no longer works' if ok else 'still works'}: {shown} of stamped "
                f"test images reach its target ({limit}).")
    if metric == "third_party_auc":
        return (f"Forgotten rows {'look' if ok else 'do not look'} like data the model never "
                f"saw: a discriminator separates them with AUC {shown} ({limit}; 0.50 means it "
                "cannot).")
    if metric == "test_acc_drop":
        return f"Accuracy on the classes kept fell by {shown} against the parent model ({limit})."
    said = METRICS.get(metric, (metric.replace("_", " "), ""))[0]
    return f"{said[0].upper()}{said[1:]}: {shown} ({limit})."


def stages(checks: list[dict[str, Any]]) -> OrderedDict[str, list[dict[str, Any]]]:
    """Checks grouped by the stage they judge, request stages first, utility last."""
    grouped: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for c in sorted(checks, key=lambda c: stage_of(c["check"]) == "utility"):
        grouped.setdefault(stage_of(c["check"]), []).append(c)
    return grouped


def short(digest: str, keep: int = 12) -> str:
    return digest[:keep] + "…" if isinstance(digest, str) and len(digest) > keep + 1 else digest


HEX = re.compile(r"^[0-9a-f]{24,}$")
