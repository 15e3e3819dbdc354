"""Numbers the docs quote from bench-results/ agree with the JSON they come from.

Each entry of QUOTES names a doc, an anchor (the doc's own words, whitespace collapsed, with
`{n}` where a quoted number stands; it must occur exactly once), one bench-results file and
how to re-derive, from that file, one value per `{n}`. A quoted number agrees when it equals the
derived value rounded to the quoted precision ("2.2" covers [2.15, 2.25]); a number written
"~80" allows 10%. Figures the docs mark as one-off tuning measurements name no file here and
are not checked. Pure file reading: no model, no import of the package.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results"
NUM = r"(~?-?\d+(?:,\d{3})*(?:\.\d+)?)"
Values = Sequence[float]


@functools.cache
def load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


@functools.cache
def doc_text(doc: str) -> str:
    return " ".join((ROOT / doc).read_text().split())


def agrees(quoted: str, value: float) -> bool:
    """`quoted` is `value` rounded to the digits it shows (or within 10% when it starts "~")."""
    text = quoted.replace(",", "")
    approx = text.startswith("~")
    number = float(text.lstrip("~"))
    decimals = len(text.partition(".")[2])
    tol = 0.1 * abs(number) if approx else 0.5 * 10.0 ** -decimals
    return abs(number - value) <= tol + 1e-9


# ---- how a value is re-derived from one file --------------------------------------------

def same(*values: float) -> float:
    """One quoted number standing for several rows: their common value, else NaN (a miss)."""
    return values[0] if all(v == values[0] for v in values) else math.nan


def rows(d: dict, method: str) -> list[dict]:
    return [r for r in d["rows"] if r["method"] == method and not r.get("error")]


def mean(d: dict, method: str, key: str, scale: float = 100.0) -> float:
    """Mean over seeds (BENCHMARKS.md's cell; accuracies in %)."""
    vals = [r[key] for r in rows(d, method) if r.get(key) is not None]
    return scale * sum(vals) / len(vals) if vals else math.nan


def passed(d: dict, method: str) -> float:
    """Seeds whose model the production gate accepted (the "k/5" of gate_pass)."""
    return sum(bool(r["gate_pass"]) for r in rows(d, method))


def depth(d: dict, method: str) -> tuple[float, float]:
    """(mean, sample std) over seeds of (m_identity - m) / (m_identity - m_retrain), m the
    relearn metric, for rows whose attack ran at a calibrated budget."""
    by_seed = {(r["method"], r["seed"]): r.get("relearn_acc") for r in d["rows"]}
    idx = []
    for r in rows(d, method):
        if (r.get("relearn_budget") or {}).get("source") != "calibrated":
            continue
        m, top, low = r["relearn_acc"], by_seed[("identity", r["seed"])], \
            by_seed[("retrain", r["seed"])]
        idx.append((top - m) / (top - low))
    if len(idx) < 2:
        return math.nan, math.nan
    avg = sum(idx) / len(idx)
    return avg, math.sqrt(sum((x - avg) ** 2 for x in idx) / (len(idx) - 1))


def rung(d: dict, n: int) -> float:
    """Seeds on which dm's batch first passed the gate at escalation rung n."""
    return sum(1 for r in rows(d, "dm") if (1 if r["gate_pass"] else r.get("ladder_rung")) == n)


def folder_step(d: dict, prefix: str, key: str) -> float:
    return same(*[r[key] for r in d["rows"] if r["step"].startswith(prefix)])


def tuned(d: dict, variant: str, scenario: str, key: str) -> float:
    return d["table"][variant][scenario][key]


def tuned_steps(d: dict, variant: str) -> list[int]:
    return [r["report"]["steps"] for r in d["rows"]["subject"] if r["method"] == variant]


def budget(d: dict, key: str) -> list[float]:
    b = d["budgets"][f"fashion-mnist/{key}"]
    return [b["steps"], b["shown"]]


def attacked(d: dict, key: str, case: str, label: str, *stats: str) -> list[float]:
    """Budget-sweep statistics of one case at one budget, in points."""
    s = d["stats"][f"fashion-mnist/{key}"][case][label]
    return [100 * s[k] for k in stats]


def chosen(d: dict, key: str, case: str, roles: Sequence[str]) -> list[float]:
    b = d["budgets"][f"fashion-mnist/{key}"]
    return attacked(d, key, case, f"{b['steps']} steps x {b['shown']} shown",
                    *[f"m_{r}" for r in roles], "spread")


def threshold(d: dict, check: str, separated: bool) -> list[float]:
    """(threshold, R = worst Retrain, S = closest sanity row); NaN if the doc's "every case
    separated" (or "not") says otherwise."""
    t = d["thresholds"][check]
    ok = t["separated"] == separated
    return [v if ok else math.nan for v in (t["threshold"], t["worst_retrain"], t["best_sanity"])]


def gate_stats(d: dict, check: str, methods: Sequence[str],
               case: Callable[[dict], bool] = lambda c: True) -> list[float]:
    return [r["stat"] for r in d["records"] if r["model"] == "cnn" and r["check"] == check
            and r["method"] in methods and case(json.loads(r["case"]))]


def spread(vals: Sequence[float]) -> list[float]:
    return [min(vals), max(vals)]


def tuned_winner(d: dict) -> dict:
    return d["table"][d["winner"]] if d["winner"] == "min_agreement=0.95" else {}


def smallest_gap(d: dict, variant: str) -> float:
    gaps = {k: v["mean_avg_gap"] for k, v in d["table"].items()}
    return gaps[variant] if min(gaps, key=gaps.get) == variant else math.nan


def subject_relearn(d: dict) -> list[float]:
    """The relearn check's line: threshold, R, S (not every case separated), the subject case
    that is not (subjects, mean rows gated), and the per-seed range of the original's and of
    the two Retrains' statistic there."""
    def subject(case: dict) -> bool:
        return case["scenario"] == "subject"

    cases = [json.loads(c) for c in d["thresholds"]["relearn_gap"]["unseparated_cases"]]
    gated = [r["rows"] for r in d["records"] if r["check"] == "relearn_gap"
             and r["method"] == "identity" and subject(json.loads(r["case"]))]
    return [*threshold(d, "relearn_gap", False), same(*[c["subjects"] for c in cases]),
            sum(gated) / len(gated),
            *spread(gate_stats(d, "relearn_gap", ("identity",), subject)),
            *spread(gate_stats(d, "relearn_gap", RETRAINS, subject))]


def random_retrain(d: dict) -> list[float]:
    """Retrain's m on held random-10% forget rows: mean of the no-attack entries, then the range
    over every attacked budget (in %)."""
    stats = d["stats"]["fashion-mnist/cnn/random"]["cnn-random-10000-0.1"]
    before = [100 * s["m_retrain"] for k, s in stats.items() if k.startswith("0 steps")]
    after = [100 * s["m_retrain"] for k, s in stats.items() if not k.startswith("0 steps")]
    return [sum(before) / len(before), *spread(after)]


@dataclass(frozen=True)
class Quote:
    doc: str
    anchor: str
    source: str
    derive: Callable[[dict], Values]

    def pattern(self) -> re.Pattern:
        return re.compile(NUM.join(re.escape(part) for part in self.anchor.split("{n}")))


RETRAINS = ("retrain", "retrain_fresh")
CLASS0, RANDOM, SUBJECT, BACKDOOR = (f"cnn-10000-{s}.json" for s in
                                     ("class-0", "random-0.1", "subject-5", "backdoor-0.01"))
RESNET = "resnet8-3000-class-0.json"
TUNE, BUDGETS, GATE = "tuning/dm.json", "depth/budgets.json", "gate/calibration.json"
CNN_CLASS, R8_BACKDOOR = "cnn/class", "resnet8/backdoor"

POWER = "gate/power.json"
R8_SUPPLEMENT = "supplement/resnet8-3000-backdoor-0.01.json"
RESNET_BACKDOOR = "resnet8-3000-backdoor-0.01.json"


def power_row(d: dict, fraction: float) -> list[float]:
    """(identity refused, Retrain passed) at one request size of the power sweep."""
    row = d["power"][json.dumps({"scenario": "random", "fraction": fraction})]
    return [row["sanity_refused"], row["retrain_passed"]]


def ceiling_row(d: dict, key: str) -> list[float]:
    """F on seeds 100 and 101 and their mean as a share (%) of Retrain set B's mean F."""
    seeds = [d["per_seed"][s] for s in ("100", "101")]
    values = [s[key] for s in seeds]
    floor = sum(s["retrain_b"] for s in seeds) / 2
    return [*values, 100 * sum(values) / 2 / floor]


CEILING_ROWS = {
    "Retrain set B itself (the floor the target is stated against)": "retrain_b",
    "dm (its own N runs)": "dm", "dm's exact targets": "targets+1sd",
    "an oracle monotone map of the original's $\\phi_0$, fitted on Retrain set B":
        "oracle_monotone+1sd",
    "Retrain set B's own per-row means": "retrain_b_mean+1sd",
}

QUOTES: tuple[Quote, ...] = (
    # docs/method.md §12: how high F can go (make bench-ceiling, tuning seeds 100-101)
    *(Quote("docs/method.md", f"| {label} | {{n}} | {{n}} | {{n}}% |",
            "tuning/epsilon_ceiling.json", lambda d, k=key: ceiling_row(d, k))
      for label, key in CEILING_ROWS.items()),
    # README.md: the relearn check's power by request size (GATE_POWER=1, 2026-12-06)
    *(Quote("README.md", f"| {rows} | {{n}}/4 | {{n}}/8 |", POWER,
            lambda d, f=rows / 10000: power_row(d, f)) for rows in (50, 100, 200, 400, 800)),
    Quote("docs/method.md", "the untouched original was refused {n} time in {n} at 50, 100 and "
          "200 rows", POWER, lambda d: [same(*(power_row(d, f)[0] for f in (0.005, 0.01, 0.02))),
                                        d["power"][json.dumps({"scenario": "random",
                                                               "fraction": 0.005})]["sanity"]]),
    # README.md: the gate and yardstick run of 2026-12-05 and the folder benchmark
    Quote("README.md", "`make bench-folder`: {n} small images prepare in {n} s at {n} GB peak, "
          "an unchanged re-run in {n} s, a re-scan after adding one image in {n} s",
          "folder-scale.json",
          lambda d: [d["images"], folder_step(d, "first prepare", "seconds"),
                     folder_step(d, "first prepare", "peak_rss_mib") * 2 ** 20 / 1e9,
                     folder_step(d, "prepare again", "seconds"),
                     folder_step(d, "prepare after adding", "seconds")]),
    Quote("README.md", "CNN on 10k-row Fashion-MNIST subsets, {n} seeds, 2 CPU cores", CLASS0,
          lambda d: [d["config"]["seeds"]]),
    Quote("README.md", "Class 0: `identity` and `logit_mask` pass the gate {n}/5, Retrain {n}/5, "
          "dm {n}/5 (finetune and neggrad_plus {n}/5, the head-only finetune {n}/5)", CLASS0,
          lambda d: [same(passed(d, "identity"), passed(d, "logit_mask")), passed(d, "retrain"),
                     passed(d, "dm"), same(passed(d, "finetune"), passed(d, "neggrad_plus")),
                     passed(d, "finetune_head")]),
    Quote("README.md", "Random 10%: `identity` {n}/5, Retrain {n}/5, dm {n}/5, finetune / scrub / "
          "finetune_head {n}/5 (their forget rows stay more confident than unseen rows), "
          "neggrad_plus {n}/5.", RANDOM,
          lambda d: [passed(d, "identity"), passed(d, "retrain"), passed(d, "dm"),
                     same(*[passed(d, m) for m in ("finetune", "scrub", "finetune_head")]),
                     passed(d, "neggrad_plus")]),
    Quote("README.md", "Backdoor (1%, default trigger): `identity` {n}/5, Retrain {n}/5, dm {n}/5, "
          "finetune_stamped {n}/5, neggrad_plus {n}/5 (the removed trigger", BACKDOOR,
          lambda d: [passed(d, m) for m in
                     ("identity", "retrain", "dm", "finetune_stamped", "neggrad_plus")]),
    Quote("README.md", "**Subject requests (~80 rows) are not judged by the gate**: with "
          "`min_rows` {n} and", SUBJECT, lambda d: [400]),
    Quote("README.md", "every row of that case shows {n}/5 (the bench judges", SUBJECT,
          lambda d: [same(*[passed(d, m) for m in ("retrain", "identity", "dm")])]),
    Quote("README.md", "dm's ladder reaches the exact retrain rung on {n}/5 seeds", SUBJECT,
          lambda d: [rung(d, 3)]),
    Quote("README.md", "session's change) had `identity` {n}/5, Retrain {n}/5, dm {n}/5 and "
          "finetune {n}/5;", R8_SUPPLEMENT,
          lambda d: [passed(d, m) for m in ("identity", "retrain", "dm", "finetune")]),
    Quote("README.md", "dm's ASR was {n}%, but its relearned ASR was {n}%, against Retrain's "
          "{n}% and the original's {n}%, so its depth index was {n}.", R8_SUPPLEMENT,
          lambda d: [mean(d, "dm", "asr"), mean(d, "dm", "relearn_acc"),
                     mean(d, "retrain", "relearn_acc"), mean(d, "identity", "relearn_acc"),
                     depth(d, "dm")[0]]),
    Quote("README.md", "ResNet-8 class 0 (3k rows): `identity` / `logit_mask` {n}/5, "
          "Retrain {n}/5, dm {n}/5 (1/5 before", RESNET,
          lambda d: [same(passed(d, "identity"), passed(d, "logit_mask")), passed(d, "retrain"),
                     passed(d, "dm")]),
    Quote("README.md", "random 10% at N = {n}, `identity` F = {n} (the old half-split estimator "
          "gave it {n}), Retrain-vs-Retrain floor {n}, dm {n}, neggrad_plus {n}, finetune {n}, "
          "scrub {n}: dm's", RANDOM,
          lambda d: [d["config"]["epsilon_models"], mean(d, "identity", "epsilon_score", 1),
                     mean(d, "identity", "epsilon_split", 1),
                     *[mean(d, m, "epsilon_score", 1) for m in
                       ("retrain_fresh", "dm", "neggrad_plus", "finetune", "scrub")]]),
    Quote("README.md", "class 0 dm {n} ± {n}, scrub {n}, finetune {n}, neggrad_plus {n}, "
          "Retrain-vs-Retrain floor {n}; `logit_mask` still scores {n} on class 0", CLASS0,
          lambda d: [*depth(d, "dm"), *[depth(d, m)[0] for m in
                                        ("scrub", "finetune", "neggrad_plus", "retrain_fresh",
                                         "logit_mask")]]),
    Quote("README.md", "backdoor dm {n} ± {n} (relearned ASR {n}% vs Retrain {n}% and the "
          "original {n}%), neggrad_plus {n}, finetune_stamped {n}.", BACKDOOR,
          lambda d: [*depth(d, "dm"), *[mean(d, m, "relearn_acc") for m in
                                        ("dm", "retrain", "identity")],
                     depth(d, "neggrad_plus")[0], depth(d, "finetune_stamped")[0]]),
    Quote("README.md", "(5 of 5 random seeds at rung 1); subject {n} × rung 3",
          SUBJECT, lambda d: [rung(d, 3)]),
    Quote("README.md", "class, backdoor and random seed ({n} of 5 random seeds at rung 1)",
          RANDOM, lambda d: [rung(d, 1)]),
    Quote("README.md", "its ASR is {n}% (Retrain's {n}%) and its relearned ASR {n}%, against "
          "Retrain's {n}% and the original's {n}%: depth index {n} ± {n}", RESNET_BACKDOOR,
          lambda d: [mean(d, "dm", "asr"), mean(d, "retrain", "asr"),
                     *[mean(d, m, "relearn_acc") for m in ("dm", "retrain", "identity")],
                     *depth(d, "dm")]),
    Quote("README.md", "dm passes the gate {n}/5, but its ASR", RESNET_BACKDOOR,
          lambda d: [passed(d, "dm")]),
    Quote("README.md", "ResNet-8 class {n} × rung 1, {n} × rung 3", RESNET,
          lambda d: [passed(d, "dm"), rung(d, 3)]),
    Quote("README.md", "read the class almost as well as the original's: threshold {n}, so it "
          "refuses", GATE, lambda d: threshold(d, "class_feature_drop", True)[:1]),
    Quote("README.md", "Class check, stated: its threshold ({n}) only demands", GATE,
          lambda d: threshold(d, "class_feature_drop", True)[:1]),
    # docs/configuration.md: the shipped gate thresholds are the calibrated ones
    Quote("docs/configuration.md", "| `gate.depth.max_relearn_gap` | `{n}` |", GATE,
          lambda d: threshold(d, "relearn_gap", False)[:1]),
    Quote("docs/configuration.md", "| `gate.depth.max_reimplant_gap` | `{n}` |", GATE,
          lambda d: threshold(d, "reimplant_gap", True)[:1]),
    Quote("docs/configuration.md", "| `gate.depth.min_class_feature_drop` | `{n}` |", GATE,
          lambda d: threshold(d, "class_feature_drop", True)[:1]),
    # docs/method.md §5: stop_z in make tune's run
    Quote("docs/method.md", "`stop_z = 1` stopped subject requests (~80 samples) after {n}-{n} "
          "steps instead of {n}-{n}, before the forget set had moved (subject avg_gap {n} vs {n} "
          "at `stop_z = 0`)", TUNE,
          lambda d: [*spread(tuned_steps(d, "stop_z=1")), *spread(tuned_steps(d, "default")),
                     tuned(d, "stop_z=1", "subject", "avg_gap"),
                     tuned(d, "default", "subject", "avg_gap")]),
    # §7: the relearning budgets (make bench-depth)
    Quote("docs/method.md", "budgets that moved Retrain by {n} and {n} points.)", BUDGETS,
          lambda d: [*attacked(d, "cnn/backdoor", "cnn-backdoor-10000-0.01",
                               "5 steps x 8 shown", "moved"),
                     *attacked(d, "cnn/random", "cnn-random-10000-0.1",
                               "5 steps x 8 shown", "moved")]),
    Quote("docs/method.md", "(bench-results/depth/budgets.md, {n} min on one thread)", BUDGETS,
          lambda d: [d["meta"]["minutes"]]),
    Quote("docs/method.md", "chose: CNN class {n} steps x {n} shown (m identity / logit_mask / "
          "Retrain / spread: {n} / {n} / {n} / {n} for class 2, {n} / {n} / {n} / {n} for "
          "class 5), CNN backdoor {n} x {n} (ASR {n} / – / {n} / {n}), ResNet-8 backdoor "
          "{n} x {n} ({n} / – / {n} / {n});", BUDGETS,
          lambda d: [*budget(d, CNN_CLASS),
                     *chosen(d, CNN_CLASS, "cnn-class-10000-2",
                             ("identity", "logit_mask", "retrain")),
                     *chosen(d, CNN_CLASS, "cnn-class-10000-5",
                             ("identity", "logit_mask", "retrain")),
                     *budget(d, "cnn/backdoor"),
                     *chosen(d, "cnn/backdoor", "cnn-backdoor-10000-0.01",
                             ("identity", "retrain")),
                     *budget(d, R8_BACKDOOR),
                     *chosen(d, R8_BACKDOOR, "resnet8-backdoor-3000-0.01",
                             ("identity", "retrain"))]),
    Quote("docs/method.md", "Retrain's accuracy on held forget rows: {n}% before, {n}-{n}% after)",
          BUDGETS,
          lambda d: random_retrain(d)),
    Quote("docs/method.md", "it relearns less than Retrain, {n}% vs {n}% at 100 x 32", BUDGETS,
          lambda d: attacked(d, "resnet8/class", "resnet8-class-3000-2", "100 steps x 32 shown",
                             "m_logit_mask", "m_retrain")),
    # §8, last paragraph: ResNet-8 class requests on the reported seeds
    Quote("docs/method.md", "bench-results/resnet8-3000-class-0.json, {n}-row subsets, {n} seeds — "
          "no relearning budget", RESNET,
          lambda d: [d["config"]["train_limit"], d["config"]["seeds"]]),
    Quote("docs/method.md", "dm's probe gap is {n} pt: probe_acc {n}% vs Retrain's {n}%",
          RESNET,
          lambda d: [mean(d, "dm", "probe_acc") - mean(d, "retrain", "probe_acc"),
                     mean(d, "dm", "probe_acc"), mean(d, "retrain", "probe_acc")]),
    # §9: make tune
    Quote("docs/method.md", "picked **`min_agreement = 0.95`** ({n} constraints missed, mean "
          "avg_gap {n})", TUNE,
          lambda d: [tuned_winner(d).get("misses", math.nan),
                     tuned_winner(d).get("mean_avg_gap", math.nan)]),
    Quote("docs/method.md", "cut the class relearning gap from {n} to {n} pt and the subject "
          "avg_gap from {n} to {n}, at a cost on backdoor utility (avg_gap {n} -> {n}) and class "
          "avg_gap ({n} -> {n}).", TUNE,
          lambda d: [tuned(d, v, s, k) for s, k in
                     (("class", "relearn_acc_gap"), ("subject", "avg_gap"),
                      ("backdoor", "avg_gap"), ("class", "avg_gap"))
                     for v in ("default", "min_agreement=0.95")]),
    Quote("docs/method.md", "`lr = 1e-3` had the smallest mean avg_gap ({n}, class relearning gap "
          "{n}) but a backdoor ASR of {n}%; the ASR differences between variants ({n}-{n}%)",
          TUNE,
          lambda d: [smallest_gap(d, "lr=0.001"),
                     tuned(d, "lr=0.001", "class", "relearn_acc_gap"),
                     100 * tuned(d, "lr=0.001", "backdoor", "asr"),
                     *spread([100 * v["backdoor"]["asr"] for v in d["table"].values()])]),
    # §11: the gate's calibration (make bench-gate)
    Quote("docs/method.md", "Calibration (`make bench-gate`, forgetflow/bench/gate_calibration.py, "
          "bench-results/gate/): tuning seeds {n}-{n};", GATE, lambda d: spread(d["seeds"])),
    Quote("docs/method.md", "`min_class_feature_drop` {n} (R {n}, S {n}: every case separated",
          GATE, lambda d: threshold(d, "class_feature_drop", True)),
    Quote("docs/method.md", "(excess drop {n}-{n} per seed over its two Retrains), while classes "
          "0 and 2-9 give {n}-{n};", GATE,
          lambda d: [*spread(gate_stats(d, "class_feature_drop", RETRAINS,
                                        lambda c: c["forget_class"] == 1)),
                     *spread(gate_stats(d, "class_feature_drop", RETRAINS,
                                        lambda c: c["forget_class"] != 1))]),
    Quote("docs/method.md", "gave 0.108, which then failed Retrain on class 0 in {n} of {n} "
          "reported seeds", CLASS0,
          lambda d: [sum(r["gate_depth"]["depth.class.class_feature_drop"] < 0.108
                         for r in rows(d, "retrain")), d["config"]["seeds"]]),
    Quote("docs/method.md", "`max_reimplant_gap` {n} (R {n}, S {n}: every case separated)", GATE,
          lambda d: threshold(d, "reimplant_gap", True)),
    Quote("docs/method.md", "`max_relearn_gap` {n} (R {n}, S {n} from random 10%; the {n}-subject "
          "case, {n} rows, is **not** separated: there the untouched original's statistic lies "
          "between {n} and {n} per seed, overlapping Retrain's {n} to {n}).", GATE,
          lambda d: subject_relearn(d)),
)


def problems(quote: Quote, text: str) -> list[str]:
    """What is wrong with one quote in `text` (the doc, whitespace collapsed): [] if nothing."""
    found = list(quote.pattern().finditer(text))
    if len(found) != 1:
        return [f"{quote.doc}: the anchor occurs {len(found)} times: {quote.anchor!r}"]
    quoted, derived = found[0].groups(), list(quote.derive(load(quote.source)))
    if len(quoted) != len(derived):
        return [f"{quote.doc}: {len(quoted)} numbers quoted, {len(derived)} derived"]
    return [f"{quote.doc}: quotes {q} where {quote.source} gives {v:.4g} ({quote.anchor!r})"
            for q, v in zip(quoted, derived, strict=True) if not agrees(q, v)]


IDS = [f"{q.doc.rsplit('/', 1)[-1]}-{i}" for i, q in enumerate(QUOTES)]


def test_every_named_file_exists() -> None:
    missing = sorted({q.source for q in QUOTES if not (RESULTS / q.source).is_file()}
                     | {q.doc for q in QUOTES if not (ROOT / q.doc).is_file()})
    assert missing == [], f"the mapping names files that are not there: {missing}"


@pytest.mark.parametrize("quote", QUOTES, ids=IDS)
def test_quoted_numbers_agree_with_bench_results(quote: Quote) -> None:
    assert problems(quote, doc_text(quote.doc)) == []


@pytest.mark.parametrize("quote", QUOTES, ids=IDS)
def test_a_wrong_number_in_the_doc_is_caught(quote: Quote) -> None:
    """The check can fail: the first quoted number, moved well past its rounding, is refused."""
    text = doc_text(quote.doc)
    match = quote.pattern().search(text)
    assert match is not None
    q = match.group(1).replace(",", "")
    number = float(q.lstrip("~"))
    decimals = len(q.partition(".")[2])
    wrong = number + (0.25 * abs(number) + 1 if q.startswith("~") else 7 * 10.0 ** -decimals)
    text = text[:match.start(1)] + f"{wrong:.{decimals}f}" + text[match.end(1):]
    assert problems(quote, text) != []


def test_rounding_is_to_the_quoted_precision() -> None:
    assert agrees("2.2", 2.2308) and agrees("96.0", 95.95) and agrees("-0.3", -0.252)
    assert agrees("100,000", 100000) and agrees("~80", 80.6)
    # what docs/method.md §8 used to say of ResNet-8 class requests, against the current JSON
    assert not agrees("2.6", 2.2308) and not agrees("3.1", math.nan)
    assert not agrees("2.23", 2.2) and not agrees("~55", 80.6) and not agrees("-0.2", -0.252)
    assert math.isnan(same(1.0, 2.0)) and same(3.0, 3.0) == 3.0
