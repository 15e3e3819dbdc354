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
CASES = (("cnn", 10000, {"scenario": "class", "forget_class": 2}),
         ("cnn", 10000, {"scenario": "class", "forget_class": 5}),
         ("cnn", 10000, {"scenario": "random", "fraction": 0.1}),
         ("cnn", 10000, {"scenario": "subject", "subjects": 5}),
         ("cnn", 10000, {"scenario": "backdoor", "poison_rate": 0.01}),
         ("resnet8", 3000, {"scenario": "class", "forget_class": 2}),
         ("resnet8", 3000, {"scenario": "backdoor", "poison_rate": 0.01}))
KIND = {"class_feature_drop": "min", "relearn_gap": "max", "reimplant_gap": "max"}
# `GATE_POWER=1`: the relearn-vs-unseen check's power by request size (50..800 rows of 10k)
POWER_CASES = tuple(("cnn", 10000, {"scenario": "random", "fraction": f})
                    for f in (0.005, 0.01, 0.02, 0.04, 0.08))


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
    """The threshold that keeps every Retrain passing (all cases) and fails the sanity rows of
    every case where they lie beyond all Retrains, halfway inside the tightest such gap.
    R = the worst Retrain statistic over all cases; S = the sanity row closest to R among the
    cases whose sanity rows are all beyond R. Cases whose sanity rows reach R cannot be
    separated at any threshold and are listed as such."""
    kind = KIND[records[0]["check"]]
    sign = 1.0 if kind == "max" else -1.0  # compare on sign * stat: "beyond" means larger
    gold = [sign * r["stat"] for r in records if r["method"] in GOLD]
    if not gold:
        return {"kind": kind, "threshold": None, "separated": False, "unseparated_cases": []}
    worst = max(gold)
    cases = sorted({r.get("case", "") for r in records})
    best = {c: min((sign * r["stat"] for r in records
                    if r.get("case", "") == c and r["method"] in SANITY), default=None)
            for c in cases}
    beyond = [v for v in best.values() if v is not None and v > worst]
    closest = min(beyond) if beyond else None
    value = worst if closest is None else (worst + closest) / 2
    return {"kind": kind, "threshold": round(float(sign * value), 4),
            "separated": bool(beyond) and len(beyond) == sum(v is not None
                                                            for v in best.values()),
            "worst_retrain": float(sign * worst),
            "best_sanity": None if closest is None else float(sign * closest),
            "unseparated_cases": [c for c, v in best.items() if v is not None and v <= worst]}


def run(seeds: int = 3, cases: tuple = CASES) -> dict:
    z = load_params().gate.depth.noise_z
    workers = int(os.environ.get("BENCH_WORKERS", "2"))
    records = []
    wanted = os.environ.get("GATE_CASES")  # e.g. "2,3,4": indices into CASES (reruns)
    cases = [cases[int(i)] for i in wanted.split(",")] if wanted else cases
    for model, limit, sc in cases:
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
             "| check | kind | threshold | every case separated | worst Retrain | closest "
             "sanity row beyond it | cases no threshold separates |",
             "|---|---|---|---|---|---|---|"]
    for check, t in cal["thresholds"].items():
        closest = "–" if t.get("best_sanity") is None else f"{t['best_sanity']:.4f}"
        lines.append(f"| {check} | {t['kind']} | {t['threshold']} | {t['separated']} | "
                     f"{t.get('worst_retrain', float('nan')):.4f} | {closest} | "
                     f"{', '.join(f'`{c}`' for c in t['unseparated_cases']) or 'none'} |")
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


def power(cal: dict, limit: float) -> dict:
    """Per request size: how many tuning seeds' sanity rows the relearn check refuses and how
    many Retrains it accepts at the configured threshold (`limit`), and the rows judged."""
    out: dict[str, dict] = {}
    for r in cal["records"]:
        if r["check"] != "relearn_gap":
            continue
        row = out.setdefault(r["case"], {"rows": [], "sanity_refused": 0, "sanity": 0,
                                         "retrain_passed": 0, "retrain": 0})
        row["rows"].append(r.get("rows"))
        refused = r["stat"] > limit
        if r["method"] in SANITY:
            row["sanity"] += 1
            row["sanity_refused"] += refused
        elif r["method"] in GOLD:
            row["retrain"] += 1
            row["retrain_passed"] += not refused
    return out


def main() -> None:
    sweep = os.environ.get("GATE_POWER") == "1"
    cal = run(int(os.environ.get("GATE_SEEDS", "3")), POWER_CASES if sweep else CASES)
    OUT.mkdir(parents=True, exist_ok=True)
    name = "power" if sweep else "calibration"
    if sweep:
        cal["power"] = power(cal, load_params().gate.depth.max_relearn_gap)
    (OUT / f"{name}.json").write_text(json.dumps(cal, indent=1, default=float))
    (OUT / f"{name}.md").write_text(markdown(cal))
    print(markdown(cal))


if __name__ == "__main__":
    main()
