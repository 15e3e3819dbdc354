"""The relearning attack's budget per (dataset, model, scenario): how a calibration sweep
(forgetflow.bench.depth) picks it, where it is stored, and how bench rows read it back.

A budget is only useful where it separates the original (`identity`) from Retrain by more
than Retrain differs from itself: otherwise `relearn_acc` and the depth index measure noise.
The rule (docs/method.md §7): the cheapest budget (RelearnConfig.cost) whose identity-Retrain
gap, mean over tuning seeds of m_identity - m_retrain, is at least SEPARATION x the spread,
mean over tuning seeds of |m_retrain - m_retrain_fresh|, and at least MIN_GAP, in every
calibrated case of that key (e.g. each forgotten class). Two more clauses, because the
original differs from Retrain before any attack (that is the forget accuracy / ASR): without
them the cheapest budget is one that relearns nothing, and the index repeats the output metric
and credits output-level hiding as depth. The attack must act: Retrain's metric rises by at
least MIN_GAP over no attack (mean over seeds). And where a hiding row exists (logit_mask,
class requests) it must sit above Retrain like the original does. No such budget: the key is
stored as null and the bench drops the relearn attack there.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from forgetflow.core.attacks import RelearnConfig

BUDGETS_PATH = Path("bench-results/depth/budgets.json")
SEPARATION = 3.0  # identity-Retrain gap in units of the Retrain-vs-Retrain spread
MIN_GAP = 0.05    # and at least 5 points, so the depth index never divides by sampling noise
HIDING = ("logit_mask",)  # rows that keep the knowledge and only hide it at the output
DEFAULT = RelearnConfig()  # where no calibration ran (documented in BENCHMARKS.md's protocol)


def budget_key(dataset: str, model: str, scenario: str) -> str:
    return f"{dataset}/{model}/{scenario}"


def budget_label(cfg: RelearnConfig) -> str:
    return f"{cfg.steps} steps x {cfg.shown} shown"


def separation(rows: list[dict], before: list[dict] | None = None) -> dict[str, float]:
    """Means over seeds for one (case, budget): `rows` hold one dict per seed with the metric
    m of each role (identity, retrain, retrain_fresh, and any others); `before` the same
    seeds with no attack (0 steps), for how far the attack moved Retrain."""
    out = {f"m_{role}": float(np.mean([r[role] for r in rows])) for role in rows[0]}
    if before is not None:
        out["moved"] = float(np.mean([r["retrain"] - b["retrain"]
                                      for r, b in zip(rows, before, strict=True)]))
    gaps = [r["identity"] - r["retrain"] for r in rows]
    diffs = [r["retrain"] - r["retrain_fresh"] for r in rows]
    out["gap"] = float(np.mean(gaps))
    out["spread"] = float(np.mean(np.abs(diffs)))
    out["spread_std"] = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else float("nan")
    return out


def separates(stats: dict[str, float]) -> bool:
    """identity, and every HIDING row measured, above Retrain by SEPARATION x spread and by
    MIN_GAP (direction matters: an attack under which Retrain relearns more than the
    original says nothing about depth), and Retrain moved by MIN_GAP where that is known."""
    bar = max(SEPARATION * stats["spread"], MIN_GAP)
    hidden = [stats[f"m_{r}"] - stats["m_retrain"] for r in HIDING if f"m_{r}" in stats]
    acts = stats.get("moved", MIN_GAP) >= MIN_GAP
    return acts and stats["gap"] >= bar and all(h >= bar for h in hidden)


def select_budget(cases: dict[str, dict[RelearnConfig, dict[str, float]]]
                  ) -> RelearnConfig | None:
    """The cheapest budget that separates in every case (None when no budget does).
    `cases`: case name -> budget -> separation() stats."""
    budgets = set.intersection(*(set(b) for b in cases.values())) if cases else set()
    good = [b for b in budgets if all(separates(c[b]) for c in cases.values())]
    return min(good, key=lambda b: (b.cost, b.shown, b.steps)) if good else None


@functools.lru_cache(maxsize=4)
def _stored(path: str) -> dict:
    p = Path(path)
    return json.loads(p.read_text()).get("budgets", {}) if p.exists() else {}


def load_budget(dataset: str, model: str, scenario: str,
                path: Path = BUDGETS_PATH) -> tuple[RelearnConfig | None, dict]:
    """(the attack config, what the bench row records about it). source: "calibrated"
    (the sweep's choice), "none" (the sweep found no separating budget: no attack, None) or
    "default" (never calibrated: DEFAULT, and no depth index is reported for it)."""
    stored = _stored(str(path))
    key = budget_key(dataset, model, scenario)
    if key not in stored:
        return DEFAULT, {"source": "default", **asdict(DEFAULT)}
    if stored[key] is None:
        return None, {"source": "none"}
    cfg = RelearnConfig(**stored[key])
    return cfg, {"source": "calibrated", **asdict(cfg)}


def to_json(cfg: RelearnConfig | None) -> dict | None:
    return None if cfg is None else asdict(cfg)


def budget_note(rows: list[dict]) -> str:
    """One line for a bench section: the relearning budget its rows ran, as they record it."""
    infos = [r["relearn_budget"] for r in rows if r.get("relearn_budget")]
    if not infos:
        return "Relearning attack: budget not recorded (rows from before calibrated budgets)."
    info = infos[0]
    if info["source"] == "none":
        return ("Relearning attack: dropped here: no budget of `make bench-depth` passes its rule "
                "(bench-results/depth/budgets.md): no relearn_acc, relearn target or "
                "depth_index.")
    text = (f"{info['steps']} steps x {info['shown']} shown, SGD lr {info['lr']:g}, "
            f"{info['retain_per_step']} retain rows per step, BatchNorm frozen")
    if info["source"] == "calibrated":
        return (f"Relearning attack: {text} (calibrated by `make bench-depth` on tuning seeds: "
                "bench-results/depth/budgets.md).")
    return f"Relearning attack: {text} (the uncalibrated default: no depth_index)."
