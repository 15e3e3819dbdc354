"""`make bench-gate`: calibrate the production gate's depth thresholds on TUNING seeds only
(100..), so that Retrain (both recipe seeds) passes and `identity` / `logit_mask` fail.

Per check, every statistic is read with its noise allowance (value - noise_z x noise for the
"at most" checks): the threshold goes halfway between the worst Retrain and the best sanity
row when they are separated; where they overlap, the threshold is the worst Retrain value
(Retrain must pass) and the report says the check cannot separate there. Results:
bench-results/gate/calibration.json and .md; params.yaml is edited by hand from them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from forgetflow.bench.harness import fashion_config
from forgetflow.bench.report import FULL_TRAIN
from forgetflow.bench.run import process_pool, run_scenario, serial_map
from forgetflow.core.params import load_params

OUT = Path("bench-results/gate")
TUNING_OFFSET = 100
GOLD, SANITY = ("retrain", "retrain_fresh"), ("identity", "logit_mask")
# (model, train_limit, scenario); classes 2 and 5 are never reported
CASES = (("cnn", 5000, {"scenario": "class", "forget_class": 2}),
         ("cnn", 5000, {"scenario": "class", "forget_class": 5}),
         ("cnn", 5000, {"scenario": "random", "fraction": 0.1}),
         ("cnn", 5000, {"scenario": "subject", "subjects": 5}),
         ("cnn", 5000, {"scenario": "backdoor", "poison_rate": 0.01}),
         ("resnet8", 3000, {"scenario": "class", "forget_class": 2}),
         ("resnet8", 3000, {"scenario": "backdoor", "poison_rate": 0.01}))
KIND = {"class_feature_drop": "min", "relearn_gap": "max", "reimplant_gap": "max"}


def statistic(evidence: dict, z: float) -> float:
    """What the gate compares with its threshold (the noise allowance taken off)."""
    kind = KIND[evidence["check"]]
    return evidence["value"] if kind == "min" else evidence["value"] - z * evidence["noise"]


def collect(result: dict, z: float) -> list[dict]:
    """One record per (row, depth check) of a scenario's rows."""
    out = []
    for r in result["rows"]:
        for ev in (r.get("gate_evidence") or {}).values():
            if ev:
                out.append({"method": r["method"], "seed": r["seed"], "check": ev["check"],
                            "stat": statistic(ev, z), **ev})
    return out


def threshold(records: list[dict]) -> dict:
    """Halfway between the worst gold row and the best sanity row, when separated."""
    kind = KIND[records[0]["check"]]
    gold = [r["stat"] for r in records if r["method"] in GOLD]
    sanity = [r["stat"] for r in records if r["method"] in SANITY]
    if not gold or not sanity:
        return {"kind": kind, "threshold": None, "separated": False}
    worst_gold = max(gold) if kind == "max" else min(gold)
    best_sanity = min(sanity) if kind == "max" else max(sanity)
    separated = worst_gold < best_sanity if kind == "max" else worst_gold > best_sanity
    value = (worst_gold + best_sanity) / 2 if separated else worst_gold
    return {"kind": kind, "threshold": round(float(value), 4), "separated": bool(separated),
            "worst_retrain": worst_gold, "best_sanity": best_sanity}


def run(seeds: int = 3) -> dict:
    z = load_params().gate.depth.noise_z
    workers = int(os.environ.get("BENCH_WORKERS", "2"))
    records = []
    for model, limit, sc in CASES:
        if sc["scenario"] == "subject":
            sc = {**sc, "subjects": round(sc["subjects"] * FULL_TRAIN / limit)}
        cfg = fashion_config(sc, methods="dm", seeds=seeds, model=model, train_limit=limit,
                             seed_offset=TUNING_OFFSET)
        if workers > 1:
            with process_pool(workers) as pool:
                result = run_scenario(cfg, lambda fn, jobs, p=pool: list(p.map(fn, jobs)))
        else:
            result = run_scenario(cfg, serial_map)
        for rec in collect(result, z):
            records.append({"model": model, "scenario": sc["scenario"],
                            "case": json.dumps(sc), **rec})
    by_check = {}
    for check in KIND:
        recs = [r for r in records if r["check"] == check]
        if recs:
            by_check[check] = threshold(recs)
    return {"noise_z": z, "seeds": list(range(TUNING_OFFSET, TUNING_OFFSET + seeds)),
            "thresholds": by_check, "records": records}


def markdown(cal: dict) -> str:
    lines = ["# Gate depth thresholds, calibrated on tuning seeds "
             f"{cal['seeds'][0]}-{cal['seeds'][-1]}", "",
             "| check | kind | threshold | separated | worst Retrain | best sanity row |",
             "|---|---|---|---|---|---|"]
    for check, t in cal["thresholds"].items():
        lines.append(f"| {check} | {t['kind']} | {t['threshold']} | {t['separated']} | "
                     f"{t.get('worst_retrain', float('nan')):.4f} | "
                     f"{t.get('best_sanity', float('nan')):.4f} |")
    lines += ["", "| model | case | method | check | statistic (mean over seeds) | min | max |",
              "|---|---|---|---|---|---|---|"]
    keys = sorted({(r["model"], r["case"], r["method"], r["check"]) for r in cal["records"]})
    for model, case, method, check in keys:
        vals = [r["stat"] for r in cal["records"] if (r["model"], r["case"], r["method"],
                                                       r["check"]) == (model, case, method,
                                                                       check)]
        lines.append(f"| {model} | `{case}` | {method} | {check} | {np.mean(vals):.4f} | "
                     f"{min(vals):.4f} | {max(vals):.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    cal = run(int(os.environ.get("GATE_SEEDS", "3")))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "calibration.json").write_text(json.dumps(cal, indent=1, default=float))
    (OUT / "calibration.md").write_text(markdown(cal))
    print(markdown(cal))


if __name__ == "__main__":
    main()
