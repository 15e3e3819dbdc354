"""Fixed prose of BENCHMARKS.md (protocol, tuning hygiene) and the noise-floor table."""

from __future__ import annotations

PREAMBLE = """\
## Protocol

- data: Fashion-MNIST (Debian files); per seed a seeded split (train / third-party reference /
  third-party holdout / test) and, where a block says so, a seeded random subset of the
  training split (`train_limit`: it keeps `make bench` within its time budget on 2 cores).
  The subject scenario scales its subject count by 54000 / subset size, so its forget set
  stays near the ~80 rows 5 subjects hold in the full split. Models: the small CNN and
  ResNet-8 (one linear head), reference recipe 12 epochs Adam one-cycle lr 3e-3 batch 128.
- blocks: the CNN with every row (paper-budget, time-matched and head-only baselines); the
  CNN on two more classes and a 2% subset with the baselines issue 7 names; the CNN on the
  **full** train split with dm and dm_sparse alone (and, on backdoors, finetune_stamped;
  Retrain's cost grows with the training set, dm's does not: this block measures the speedup
  at production size); ResNet-8 on a 5,000-sample subset with the named baselines. Every
  block also runs `dm_sparse` beside dm. The epsilon score is computed for the first block's
  class and random rows and for every random row (ResNet-8: dm and the named baselines); the
  extra class rows and ResNet-8's class row carry none here (time budget; they were scored
  separately: BENCHMARKS.md, "Supplement").
- methods use the third-party **reference** split; third_party_auc and probe_acc read the
  **holdout** split only; MIA non-members are test samples (SalUn protocol).
- rows: `retrain` (gold), `retrain_fresh` (Retrain with recipe seed + 500: its distance to
  `retrain` is the noise floor of every metric), `identity` (the original), `logit_mask`
  (class requests: the class's output row zeroed, bias -30; no training), `dm`, `dm_sparse`
  (an option, not dm's default: dm changing only the 3% of the updated weights its forget
  loss moves most; docs/method.md §10), baselines
  at their papers' budgets (docs/baselines.md), `NAME@dm_time` (the same baseline with its
  schedule scaled to dm's wall-clock on that seed) and `NAME_head` (the frozen-feature
  shortcut dm uses).
- depth metrics: `relearn_acc` = the metric after a relearning attack (forgetflow/core/
  attacks.py) at the budget `make bench-depth` calibrated on tuning seeds (bench-results/
  depth/budgets.md; each row's `relearn_budget` names it): `steps` plain-SGD updates, lr 0.01,
  on all weights with BatchNorm statistics frozen (eval mode), each on the `shown` labelled
  forget samples + 64 fresh retain rows. Metric: class = mean of held-class recall (forget
  rows not shown) and other-class test accuracy (predicting the class everywhere scores
  0.5); samples = accuracy on the forget rows not shown; backdoor = ASR on stamped
  non-target test images (clean accuracy after the attack: `relearn_clean_acc` in the JSON).
  Where no budget both moved Retrain's metric by 5 points and separated the original (and,
  for classes, logit_mask) from Retrain by 3x the Retrain-vs-Retrain spread, the attack is
  dropped (no relearn_acc, no relearn target: CNN random and ResNet-8 class requests);
  where none was calibrated (subject, other datasets) it runs the default 40 steps x 32
  shown. `depth_index` = (m_identity - m) / (m_identity - m_retrain) per seed on that metric
  (1 = as deep as Retrain, 0 = as the original; calibrated budgets only), the
  `retrain_fresh` row's index being its floor (docs/method.md §7);
  `probe_acc` = 5-fold logistic probe on penultimate features (class: forgotten class vs
  rest on holdout data; samples: forget vs holdout membership; n/a for backdoors).
- `epsilon_score` = F of the NeurIPS 2023 unlearning challenge with its semantics
  (forgetflow/core/epsilon.py): per forget example, the logit-scaled confidence under N
  unlearned and N retrained models; every single-threshold rule (both directions) and
  two-threshold rule (an interval or its complement) over the pooled values, fitted and
  scored on all 2N models; eps at delta 1e-5 (attacks with exactly one zero rate discarded),
  the maximum over attacks, and eps = inf when either side is (near-)constant (std at most
  1% of the other side's); 0.5-wide bins scored 2^-bin, eps = inf scores 0. The results
  JSON carries F's 95% bootstrap interval over forget examples (`epsilon_ci_low`,
  `epsilon_ci_high`). `epsilon_split` = the older estimator (thresholds fitted on half the
  models, scored on the other half), kept as a secondary column: it rewarded low variance
  (N copies of the original scored ~0.5, where the challenge gives 0).
  `challenge_score` = F x RA_U/RA_R x TA_U/TA_R. Computed on the first seed only, for class
  and random requests; the `retrain_fresh` row holds Retrain's own F (a second set of N
  retrained models against the first): the best any method can expect at this N. It is
  well below 1 and falls as N grows (the maximum over attacks finds noise), so F compares
  rows at one N only.
- aggregation: mean ± sample std (ddof = 1) over seeds; `speedup (min)` = Σ Retrain seconds
  / Σ method seconds, with the smallest per-seed ratio in brackets; targets on the means
  with the number of seeds that pass alone; the Pareto check uses every row.

## Tuning hygiene

Reported numbers use seeds 0..N-1 on Fashion-MNIST. dm's defaults come from `make tune`
(forgetflow/bench/tune.py; result in bench-results/tuning/dm.md): a two-round coordinate search
(one knob at a time around the best config so far) on **tuning seeds 100-102** only, CNN,
10,000-sample subsets, class 2 (not a reported class), random 10%, ~80-row subjects and a 1%
backdoor; rule: fewest missed constraints (class forget_acc <= 0.01, class relearn_acc within
5 pt of Retrain, backdoor ASR <= 0.02), then the smallest mean avg_gap; `min_agreement` is the
exception (0.98, chosen by hand on tuning seeds 100-101 after the class-anchor fix:
docs/method.md §5, §9). ResNet-8 uses the same
DMConfig; its `trainable="auto"` ablation (docs/method.md §8) ran on tuning seed 100. The
baselines' defaults come from their papers (docs/baselines.md), not from runs on these seeds.
The relearning attack's budgets come from `make bench-depth` (forgetflow/bench/depth.py;
bench-results/depth/budgets.md) on **tuning seeds 100-103** only: CNN classes 2 and 5, a 1%
backdoor and random 10% on 10,000-sample subsets, ResNet-8 class 2 and a 1% backdoor on
3,000-sample subsets.
"""


def noise_floor_table(summary: dict, metrics: tuple[str, ...]) -> str:
    """|retrain_fresh - retrain| per metric (points for accuracies, raw for the rest)."""
    gold, fresh = summary.get("retrain"), summary.get("retrain_fresh")
    if not gold or not fresh:
        return "(no noise-floor row)"
    cells = []
    for key in metrics:
        if key in ("seconds", "avg_gap", "epsilon_score", "epsilon_split", "challenge_score",
                   "depth_index"):  # the floor row's own value
            value = fresh.get(key)
            cells.append("–" if value is None else f"{value[0]:.2f}")
            continue
        a, b = gold.get(key), fresh.get(key)
        cells.append("–" if a is None or b is None else f"{100 * abs(a[0] - b[0]):.2f}")
    return "| " + " | ".join(metrics) + " |\n|" + "---|" * len(metrics) + "\n| " + \
        " | ".join(cells) + " |"


DEPTH = ("relearn_acc", "depth_index", "probe_acc", "epsilon_score", "challenge_score")
NOT_BASELINES = ("retrain", "retrain_fresh", "identity", "logit_mask", "dm")


def _distance(summary: dict, label: str, key: str) -> float | None:
    """How far a row is from Retrain on `key` (epsilon/challenge: 1 - F, since Retrain's own
    F is not 1 but the floor row's value)."""
    stats = summary.get(label, {}).get(key)
    if stats is None:
        return None
    if key in ("epsilon_score", "challenge_score"):
        return 1.0 - stats[0]
    gold = summary["retrain"].get(key)
    return None if gold is None else abs(stats[0] - gold[0])


def where_dm_loses(summary: dict) -> list[str]:
    """Per depth/privacy metric and avg_gap: dm's distance to Retrain next to the noise floor
    and every baseline row that is closer (computed, not hand-picked)."""
    lines = []
    for key in (*DEPTH, "avg_gap"):
        dm = _distance(summary, "dm", key) if key != "avg_gap" else \
            (summary.get("dm", {}).get("avg_gap") or (None,))[0]
        if dm is None:
            continue
        floor = _distance(summary, "retrain_fresh", key) if key != "avg_gap" else \
            (summary.get("retrain_fresh", {}).get("avg_gap") or (None,))[0]
        closer = []
        for label, stats in summary.items():
            if label in NOT_BASELINES:
                continue
            d = _distance(summary, label, key) if key != "avg_gap" else \
                (stats.get("avg_gap") or (None,))[0]
            if d is not None and d < dm - 0.005:  # closer by more than rounding
                closer.append(f"{label} ({_fmt(key, d)})")
        unit = "1 - F" if key in ("epsilon_score", "challenge_score") else \
            ("points" if key == "avg_gap" else "|Δ| to Retrain")
        lines.append(f"- {key} ({unit}): dm {_fmt(key, dm)}, noise floor "
                     f"{'–' if floor is None else _fmt(key, floor)}; closer than dm: "
                     f"{', '.join(closer) or 'none'}")
    return lines


def _fmt(key: str, value: float) -> str:
    if key in ("epsilon_score", "challenge_score", "avg_gap", "depth_index"):
        return f"{value:.2f}"
    return f"{100 * value:.2f} pt"


KEEP_MARKER = "<!-- sections below are written by hand; make bench keeps them -->"
GENERATED_H2 = ("## Protocol", "## Tuning hygiene", "## Time vs avg_gap", "## CLI latency",
                "## Seconds vs training-set size")


def kept_sections(old: str) -> str:
    """The hand-written part of an existing BENCHMARKS.md, which a regeneration must keep:
    everything after KEEP_MARKER, or (older files) every `## ` section the report does not
    generate itself."""
    if KEEP_MARKER in old:
        return old.split(KEEP_MARKER, 1)[1].strip("\n")
    sections, current = [], None
    for line in old.splitlines():
        if line.startswith("## "):
            current = None if line.startswith(GENERATED_H2) else [line]
            if current is not None:
                sections.append(current)
        elif current is not None:
            current.append(line)
    return "\n\n".join("\n".join(s).strip("\n") for s in sections)


def replace_section(text: str, heading: str, body: str) -> str:
    """`text` with its `## heading` section (up to the next `## ` or the hand-written part)
    replaced by `body`, or `body` added before the hand-written part when it has none."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        marker = next((i for i, line in enumerate(lines) if line == KEEP_MARKER), len(lines))
        lines[marker:marker] = [*body.rstrip("\n").splitlines(), ""]
        return "\n".join(lines) + "\n"
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].startswith("## ") or lines[i] == KEEP_MARKER), len(lines))
    lines[start:end] = [*body.rstrip("\n").splitlines(), ""]
    return "\n".join(lines) + "\n"
