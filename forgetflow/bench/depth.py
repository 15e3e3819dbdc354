"""`make bench-depth`: calibrate the relearning attack's budget on tuning seeds (>= 100) only.

For each case (model, scenario, forgotten class) and tuning seed it trains (or reuses from
bench-cache/) the original, Retrain and a second Retrain with another recipe seed, builds the
sanity rows (logit_mask for classes) and dm, and runs the attack of
forgetflow.core.attacks at every budget of the grid STEPS x SHOWN. Per (model, scenario) it
picks the cheapest budget that separates the original from Retrain by more than Retrain
differs from itself (forgetflow.bench.relearn_budget), and writes
bench-results/depth/budgets.json (read back by every bench row) and budgets.md.
dm is measured for information only: the rule reads identity, logit_mask, Retrain and its
second copy. Knobs: DEPTH_SEEDS (tuning seeds from 100; default 4), DEPTH_CASES (comma-
separated case names; default all), DEPTH_REUSE=1 (apply the rule again to the stored records,
running no model).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from forgetflow.bench.aggregate import depth_index
from forgetflow.bench.harness import BenchConfig, fashion_config, log
from forgetflow.bench.jobs import Job, _sets, seed_data, train_role, unlearn
from forgetflow.bench.relearn_budget import (
    BUDGETS_PATH,
    HIDING,
    MIN_GAP,
    SEPARATION,
    budget_key,
    budget_label,
    select_budget,
    separates,
    separation,
    to_json,
)
from forgetflow.bench.tune import env_int
from forgetflow.core.attacks import RelearnConfig, relearn_curve

TUNING_SEED_OFFSET = 100
STEPS = (5, 15, 40, 100)  # plus 0 (no attack) in the records, never a candidate
SHOWN = (8, 32)
BASE = RelearnConfig()  # lr, momentum and retain rows per step stay fixed across the grid
CASES: tuple[dict, ...] = (  # classes 2 and 5: neither is a reported class (0, 4, 7)
    {"model": "cnn", "train_limit": 10000, "scenario": "class", "forget_class": 2},
    {"model": "cnn", "train_limit": 10000, "scenario": "class", "forget_class": 5},
    {"model": "cnn", "train_limit": 10000, "scenario": "backdoor", "poison_rate": 0.01},
    {"model": "cnn", "train_limit": 10000, "scenario": "random", "fraction": 0.1},
    {"model": "resnet8", "train_limit": 3000, "scenario": "class", "forget_class": 2},
    {"model": "resnet8", "train_limit": 3000, "scenario": "backdoor", "poison_rate": 0.01},
)
DATASET = "fashion-mnist"


def case_name(case: dict) -> str:
    extra = "-".join(str(v) for k, v in case.items() if k not in ("model", "scenario"))
    return f"{case['model']}-{case['scenario']}-{extra}"


def case_config(case: dict, seeds: int) -> BenchConfig:
    """The bench's config of one case, shifted onto the tuning seeds."""
    sc = {k: v for k, v in case.items() if k not in ("model", "train_limit")}
    cfg = fashion_config(sc, methods="dm", seeds=seeds, model=case["model"],
                         train_limit=case["train_limit"], seed_offset=TUNING_SEED_OFFSET)
    if min(cfg.report_seeds()) < TUNING_SEED_OFFSET:
        raise ValueError("calibration must not touch the reported seeds")
    return cfg


def role_models(cfg: BenchConfig, seed: int) -> dict[str, torch.nn.Module]:
    """identity (the original), Retrain, its second copy, logit_mask (class) and dm."""
    setup = seed_data(cfg, seed)
    models = {role: train_role(cfg, setup, seed, name)[0] for role, name in (
        ("identity", "original"), ("retrain", "retrain"), ("retrain_fresh", "retrain_fresh"))}
    methods = ("logit_mask", "dm") if cfg.scenario == "class" else ("dm",)
    for method in methods:
        models[method] = unlearn(Job("row", cfg, seed, method), setup, seed)[0]
    return models


def measure_seed(cfg: BenchConfig, seed: int, base: RelearnConfig = BASE,
                 steps: tuple[int, ...] = STEPS, shown: tuple[int, ...] = SHOWN) -> list[dict]:
    """Every role x budget of one seed, as flat records (one attack run per shown count:
    shorter step budgets are prefixes of the longest one)."""
    setup = seed_data(cfg, seed)
    forget, retain = _sets(setup)
    target = cfg.target(forget, setup.bundle.third_party)
    out = []
    for role, model in role_models(cfg, seed).items():
        for k in shown:
            curve = relearn_curve(model, forget, retain, setup.bundle.test, target.trigger,
                                  seed, replace(base, steps=max(steps), shown=k),
                                  target.forget_class,
                                  at=(0, *steps))
            out += [{"seed": seed, "role": role, "steps": r.steps, "shown": k,
                     **{f: getattr(r, f) for f in ("metric", "held_acc", "other_acc",
                                                   "clean_acc")}} for r in curve]
    return out


def budget_stats(records: list[dict], base: RelearnConfig = BASE
                 ) -> dict[RelearnConfig, dict[str, float]]:
    """separation() per budget (against the same split with no attack), with the per-seed
    depth index of every non-gold role."""
    grouped: dict[tuple[int, int], list[dict]] = {}
    for budget in sorted({(r["steps"], r["shown"]) for r in records}):
        mine = [r for r in records if (r["steps"], r["shown"]) == budget]
        grouped[budget] = [{r["role"]: r["metric"] for r in mine if r["seed"] == s}
                           for s in sorted({r["seed"] for r in mine})]
    out = {}
    for (steps, shown), per_seed in grouped.items():
        stats = separation(per_seed, grouped.get((0, shown)) if steps else None)
        for role in per_seed[0]:
            if role not in ("identity", "retrain"):
                idx = [depth_index(p[role], p["identity"], p["retrain"]) for p in per_seed]
                idx = [i for i in idx if i is not None]
                stats[f"index_{role}"] = float(np.mean(idx)) if idx else float("nan")
        out[replace(base, steps=steps, shown=shown)] = stats
    return out


def calibrate(records: dict[str, list[dict]]) -> tuple[dict, dict]:
    """(key -> chosen budget or None, key -> case -> budget -> stats)."""
    tables: dict[str, dict] = {}
    for case in CASES:
        name = case_name(case)
        if name in records:
            key = budget_key(DATASET, case["model"], case["scenario"])
            tables.setdefault(key, {})[name] = budget_stats(records[name])
    chosen = {key: select_budget({name: {b: st for b, st in budgets.items() if b.steps > 0}
                                  for name, budgets in cases.items()})
              for key, cases in tables.items()}
    return chosen, tables


def markdown(chosen: dict, tables: dict, meta: dict) -> str:
    """One table per (model, scenario): every budget, the chosen one in bold."""
    cols = ["case", "budget", "m identity", "m logit_mask", "m dm", "m retrain",
            "m retrain_fresh", "gap", "spread", "spread std", "Retrain moved", "separates",
            "index logit_mask", "index dm", "index retrain_fresh"]
    lines = [f"Calibration run: {json.dumps(meta)}", "",
             f"Rule: the cheapest budget (steps x (shown + retain rows per step)) with "
             f"gap = mean(m_identity - m_retrain) >= max({SEPARATION:g} x spread, {MIN_GAP:g}) "
             f"in every case of the key, the same for m_{'/'.join(HIDING)} - m_retrain "
             f"where that hiding row exists, and the attack acts: m_retrain rises by >= "
             f"{MIN_GAP:g} over no attack (Retrain moved); spread = mean over tuning seeds of "
             "|m_retrain - "
             "m_retrain_fresh| (its sample std beside it). m in %; index = depth index "
             "(identity 0, Retrain 1), mean over seeds; 0 steps = no attack (never a "
             "candidate: shown for reference).", ""]
    for key, cases in tables.items():
        pick = chosen[key]
        lines += [f"## {key}: " + (f"**{budget_label(pick)}**" if pick else
                                    "**no budget passes the rule: relearn dropped**"), "",
                  "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for name, budgets in cases.items():
            for b, st in budgets.items():
                text = budget_label(b) + ("" if b.steps else " (no attack)")
                cells = [name, f"**{text}**" if b == pick else text]
                cells += [_pct(st.get(f"m_{r}")) for r in
                          ("identity", "logit_mask", "dm", "retrain", "retrain_fresh")]
                cells += [_pct(st["gap"]), _pct(st["spread"]), _pct(st["spread_std"]),
                          _pct(st.get("moved")), "yes" if b.steps and separates(st) else "no"]
                cells += [_num(st.get(f"index_{r}")) for r in
                          ("logit_mask", "dm", "retrain_fresh")]
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _pct(v: float | None) -> str:
    return "–" if v is None or np.isnan(v) else f"{100 * v:.1f}"


def _num(v: float | None) -> str:
    return "–" if v is None or np.isnan(v) else f"{v:.2f}"


def write(chosen: dict, tables: dict, records: dict, meta: dict, out: Path) -> None:
    """budgets.json (what the bench reads) and budgets.md next to it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stats = {key: {name: {budget_label(b): st for b, st in budgets.items()}
                   for name, budgets in cases.items()} for key, cases in tables.items()}
    out.write_text(json.dumps({"meta": meta,
                               "budgets": {k: to_json(v) for k, v in chosen.items()},
                               "stats": stats, "records": records}, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(chosen, tables, meta) + "\n")


def recalibrate(path: Path = BUDGETS_PATH) -> None:
    """Apply the rule again to the records a sweep stored (no model is run): for a change
    of the rule, which reads tuning seeds only."""
    stored = json.loads(path.read_text())
    chosen, tables = calibrate(stored["records"])
    meta = {**stored["meta"], "rule_applied": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"}
    write(chosen, tables, stored["records"], meta, path)
    print(markdown(chosen, tables, meta))


def main() -> None:
    if os.environ.get("DEPTH_REUSE") == "1":
        recalibrate()
        return
    seeds = env_int("DEPTH_SEEDS", 4, 2)
    os.environ.setdefault("FORGETFLOW_THREADS", "1")
    torch.set_num_threads(int(os.environ["FORGETFLOW_THREADS"]))
    names = [n for n in os.environ.get("DEPTH_CASES", "").split(",") if n]  # default: all
    wanted = [c for c in CASES if not names or case_name(c) in names]
    started, t0 = dt.datetime.now(dt.UTC), time.perf_counter()
    records: dict[str, list[dict]] = {}
    for case in wanted:
        cfg = case_config(case, seeds)
        records[case_name(case)] = [rec for s in cfg.report_seeds()
                                    for rec in measure_seed(cfg, s)]
        log(f"[depth] {case_name(case)} done at {time.perf_counter() - t0:.0f}s")
    chosen, tables = calibrate(records)
    meta = {"date": f"{started:%Y-%m-%d %H:%M} UTC", "dataset": DATASET,
            "seeds": case_config(CASES[0], seeds).report_seeds(), "steps": list(STEPS),
            "shown": list(SHOWN), "base": asdict(BASE), "cases": list(wanted),
            "threads": os.environ["FORGETFLOW_THREADS"],
            "minutes": round((time.perf_counter() - t0) / 60, 1)}
    write(chosen, tables, records, meta, BUDGETS_PATH)
    print(markdown(chosen, tables, meta))
    print(f"wrote {BUDGETS_PATH}", file=sys.stderr)


if __name__ == "__main__":
    main()
