"""Honest aggregation of bench rows: mean ± std (ddof = 1), speedup as total-over-total and
its per-seed minimum, per-seed pass counts of every target, a Pareto check over every row."""

from __future__ import annotations

import numpy as np

METRICS = ("forget_acc", "retain_acc", "test_acc", "test_acc_remaining", "mia_efficacy",
           "mia_loss_acc", "third_party_auc", "asr", "relearn_acc", "depth_index",
           "probe_acc", "epsilon_score", "epsilon_split", "challenge_score", "seconds", "avg_gap")
UNITLESS = ("seconds", "avg_gap", "epsilon_score", "epsilon_split", "challenge_score",
            "depth_index")
NOISE_FLOOR = "retrain_fresh"


def labels(result: dict) -> list[str]:
    return list(dict.fromkeys(r["method"] for r in result["rows"]))


def speedups(result: dict, label: str) -> tuple[float | None, float | None]:
    """(Σ Retrain seconds / Σ method seconds, min over seeds of the per-seed ratio)."""
    rows = [r for r in result["rows"] if r["method"] == label and r.get("seconds") is not None]
    gold = {r["seed"]: r["seconds"] for r in result["rows"] if r["method"] == "retrain"}
    secs = [(gold[r["seed"]], r["seconds"]) for r in rows if r["seed"] in gold]
    total = sum(s for _, s in secs)
    if not secs or total <= 0:
        return None, None
    ratios = [g / s for g, s in secs if s > 0]
    return sum(g for g, _ in secs) / total, (min(ratios) if ratios else None)


def depth_index(m: float | None, m_identity: float | None,
                m_retrain: float | None) -> float | None:
    """(m_identity - m) / (m_identity - m_retrain) of one seed's relearn metric: 1 = as deep
    as Retrain, 0 = no deeper than the original; None where undefined (a value missing, or
    identity and Retrain equal: the attack then cannot tell depth)."""
    vals = (m, m_identity, m_retrain)
    if any(v is None or np.isnan(v) for v in vals) or abs(m_identity - m_retrain) < 1e-12:
        return None
    return float((m_identity - m) / (m_identity - m_retrain))


def depth_indices(result: dict) -> dict[tuple[str, int], float]:
    """depth_index per (row label, seed), from that seed's identity and Retrain rows; only
    rows whose attack ran at a calibrated budget (forgetflow.bench.relearn_budget) get one:
    an uncalibrated budget need not separate the original from Retrain at all."""
    by_seed: dict[int, dict[str, dict]] = {}
    for r in result["rows"]:
        by_seed.setdefault(r["seed"], {})[r["method"]] = r
    out = {}
    for seed, by in by_seed.items():
        ident, gold = by.get("identity", {}), by.get("retrain", {})
        for label, r in by.items():
            if (r.get("relearn_budget") or {}).get("source") != "calibrated":
                continue
            v = depth_index(r.get("relearn_acc"), ident.get("relearn_acc"),
                            gold.get("relearn_acc"))
            if v is not None:
                out[(label, seed)] = v
    return out


def summarize(result: dict) -> dict[str, dict[str, tuple[float, float | None] | None]]:
    """Mean and sample std (ddof = 1; None from a single value) per row label and metric."""
    out: dict[str, dict] = {}
    index = depth_indices(result)
    for label in labels(result):
        rows = [r for r in result["rows"] if r["method"] == label]
        out[label] = {}
        for key in METRICS:
            vals = [index.get((label, r["seed"])) if key == "depth_index" else r.get(key)
                    for r in rows]
            vals = [v for v in vals if v is not None]
            out[label][key] = None if not vals else (
                float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else None)
        out[label]["speedup"], out[label]["speedup_min"] = speedups(result, label)
    return out


def _cell(key: str, v: tuple[float, float | None] | None) -> str:
    if v is None:
        return "–"
    mean, std = v
    scale, digits = (1.0, 2) if key in UNITLESS else (100.0, 2)
    if key == "seconds":
        digits = 1
    text = f"{scale * mean:.{digits}f}"
    return text + (f" ± {scale * std:.{digits}f}" if std is not None else "")


def format_table(result: dict) -> str:
    """Markdown: accuracies in %, avg_gap in points, F and the challenge score in [0, 1],
    speedup total-over-total with the per-seed minimum in brackets."""
    summary = summarize(result)
    cols = [*METRICS, "speedup (min)", "gate_pass"]
    lines = ["| method | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for label, stats in summary.items():
        cells = [_cell(k, stats[k]) for k in METRICS]
        total, low = stats["speedup"], stats["speedup_min"]
        cells.append("–" if total is None or label == "retrain" else
                     (f"{total:.1f}× ({low:.1f}×)" if total < 1e4 else "∞"))
        cells.append(gate_cell(result, label))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    rungs = ladder_line(result)
    if rungs:
        lines += ["", rungs]
    floor = summary.get(NOISE_FLOOR, {}).get("depth_index")
    if floor is not None:
        lines += ["", f"depth_index: 1 = as deep as Retrain under the calibrated relearning "
                  f"attack, 0 = as the original; floor (the {NOISE_FLOOR} row): {floor[0]:.2f}"]
    failed = [f"{r['method']} (seed {r['seed']}): {r['error']}" for r in result["rows"]
              if r.get("error")]
    if failed:
        lines += ["", "Failed runs (no metrics; excluded from the means): " + "; ".join(failed)]
    return "\n".join(lines)


def gate_cell(result: dict, label: str) -> str:
    """Seeds the production gate accepts, e.g. "2/3"; "–" where the gate was not run."""
    rows = [r for r in result["rows"] if r["method"] == label and "gate_pass" in r]
    return f"{sum(bool(r['gate_pass']) for r in rows)}/{len(rows)}" if rows else "–"


def ladder_line(result: dict) -> str:
    """How often each rung of the escalation ladder was needed for dm's rows."""
    rows = [r for r in result["rows"] if r["method"] == "dm" and "gate_pass" in r]
    if not rows:
        return ""
    rungs = [1 if r["gate_pass"] else r.get("ladder_rung") for r in rows]
    counts = {k: sum(1 for x in rungs if x == k) for k in sorted({x for x in rungs
                                                                    if x is not None})}
    text = ", ".join(f"rung {k}: {n}" for k, n in counts.items())
    none = sum(1 for x in rungs if x is None)
    return (f"Escalation ladder (dm → dm on all layers → retrain), rung that first passed the "
            f"gate per seed: {text}" + (f", none: {none}" if none else "") + ".")


def _value(stats: dict, key: str) -> float:
    v = stats.get(key)
    if isinstance(v, tuple):
        return v[0]
    return float("nan") if v is None else float(v)


SPEEDUP_TARGET = {"cnn": 30.0, "resnet8": 20.0}  # total-over-total; other models: 20
PAPER_BASELINES = ("finetune", "neggrad_plus", "random_label", "l1_sparse", "salun", "scrub",
                   "scrub_rewind")


def targets(scenario: str, method: dict, gold: dict, identity: dict,
            seeds: list[dict] | None = None, model: str = "cnn") -> list[tuple[str, float, bool]]:
    """The open issues' targets for one method, on means or on one seed's rows: output
    metrics, depth (relearn/probe within a few points of Retrain's) and total-over-total
    speed."""
    def m(stats: dict, key: str) -> float:
        return _value(stats, key)

    def pt(key: str) -> float:
        return 100 * abs(m(method, key) - m(gold, key))

    gap, speed = m(method, "avg_gap"), m(method, "speedup")
    bound = SPEEDUP_TARGET.get(model, 20.0)
    checks = [(f"speedup >= {bound:g} (x; means: total Retrain s / total method s)", speed,
               speed >= bound)]

    def relearn(name: str) -> list[tuple[str, float, bool]]:
        """None where the calibration found no separating budget (the attack was dropped)."""
        return [] if np.isnan(m(gold, "relearn_acc")) else \
            [(name, pt("relearn_acc"), pt("relearn_acc") <= 5.0)]

    if scenario == "class":
        checks += [("forget_acc", m(method, "forget_acc"), m(method, "forget_acc") <= 0.01),
                   ("|test_acc_remaining - Retrain| (pt)", pt("test_acc_remaining"),
                    pt("test_acc_remaining") <= 1.0),
                   *relearn("|relearn_acc - Retrain| (pt)"),
                   ("|probe_acc - Retrain| (pt)", pt("probe_acc"), pt("probe_acc") <= 2.0)]
    else:
        checks.append(("avg_gap (pt)", gap, gap <= 1.0))
    if scenario == "random":
        checks += [("avg_gap / identity's", gap / m(identity, "avg_gap"),
                    gap <= m(identity, "avg_gap") / 3),
                   ("|mia_loss_acc - Retrain| (pt)", pt("mia_loss_acc"),
                    pt("mia_loss_acc") <= 2.0)]
    if scenario == "backdoor":
        checks += [("Original ASR", m(identity, "asr"), m(identity, "asr") >= 0.90),
                   ("ASR", m(method, "asr"), m(method, "asr") <= 0.02),
                   ("|test_acc - Retrain| (pt)", pt("test_acc"), pt("test_acc") <= 1.0),
                   *relearn("|relearn ASR - Retrain| (pt)")]
        if seeds:
            recall = min(s["extraction_recall"] for s in seeds)
            precision = min(s["extraction_precision"] for s in seeds)
            checks += [("extraction recall (min over seeds)", recall, recall >= 0.99),
                       ("extraction precision (min over seeds)", precision, precision >= 0.99)]
    return checks


def epsilon_check(summary: dict, label: str) -> str | None:
    """F of `label` against every paper-budget baseline that carries one (first seed)."""
    own = summary.get(label, {}).get("epsilon_score")
    rivals = {k: v["epsilon_score"][0] for k, v in summary.items()
              if k in PAPER_BASELINES and v.get("epsilon_score") is not None}
    if own is None or not rivals:
        return None
    best = max(rivals, key=rivals.get)
    ok = own[0] >= rivals[best]
    return (f"- {'PASS' if ok else 'MISS'} epsilon_score >= every paper-budget baseline's: "
            f"{own[0]:.3f} vs best {best} {rivals[best]:.3f} (first seed)")


def pass_counts(result: dict, label: str) -> list[str]:
    """Each target on the means (PASS/MISS) with the number of seeds passing it alone."""
    scenario = result["config"]["scenario"]
    summary = summarize(result)
    if label not in summary:
        return [f"- {label} was not run"]
    model = result["config"].get("model", "cnn")
    mean_checks = targets(scenario, summary[label], summary["retrain"], summary["identity"],
                          result["seeds"], model)
    per_seed = []
    for s in sorted({r["seed"] for r in result["rows"]}):
        by = {r["method"]: r for r in result["rows"] if r["seed"] == s}
        if label in by:
            per_seed.append(targets(scenario, by[label], by["retrain"], by["identity"],
                                    result["seeds"], model))
    lines = []
    for i, (name, value, ok) in enumerate(mean_checks):
        passed = sum(1 for checks in per_seed if checks[i][2])
        lines.append(f"- {'PASS' if ok else 'MISS'} {name}: {value:.3f} "
                     f"(seeds passing: {passed}/{len(per_seed)})")
    eps = epsilon_check(summary, label) if scenario == "random" else None
    return lines + ([eps] if eps else [])


def pareto(result: dict, label: str = "dm", key: str = "avg_gap") -> list[str]:
    """Rows (any, sanity and time-matched included) that beat `label` on both mean seconds
    and `key` (avg_gap, or 1 - epsilon_score with key="epsilon"); an empty list means
    `label` is on that front. Rows without the metric cannot dominate."""
    summary = summarize(result)
    if label not in summary:
        return []

    def cost(st: dict) -> float:
        return 1.0 - _value(st, "epsilon_score") if key == "epsilon" else _value(st, key)

    mine, secs = cost(summary[label]), _value(summary[label], "seconds")
    return [name for name, st in summary.items() if name not in (label, "retrain")
            and cost(st) < mine and _value(st, "seconds") < secs]
