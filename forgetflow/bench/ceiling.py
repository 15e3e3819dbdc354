"""`make bench-ceiling`: how high can the epsilon score (F) of a random request go for any
method whose per-row confidence is a monotone function of the original's? Tuning seeds only.

dm's sample targets (docs/method.md §2, §12) are a monotone map of the original's confidence
logit phi0 per forget row, blurred by seeded jitter. Here the same F as the bench (challenge
semantics, N models per side against Retrain set A) scores:
- Retrain set B (the Retrain-vs-Retrain floor the target is stated against) and dm itself;
- dm's exact targets, an *oracle* monotone map of phi0 (isotonic regression fitted on Retrain
  set B's per-row means: it uses Retrains, which no unlearning method may) and set B's own
  per-row means, each with seeded Gaussian noise of Retrain's per-row spread (0 to 1.5x) drawn
  independently per model. If even the oracle map stays below a target, no coupling of phi0
  reaches it: the missing part is per-row information the original does not hold."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression

from forgetflow.bench.harness import fashion_config
from forgetflow.bench.jobs import Job, seed_data, train_role, unlearn
from forgetflow.core.epsilon import forgetting_quality, logit_confidence
from forgetflow.core.matching import quantile_targets
from forgetflow.core.metrics import predict_logits

OUT = Path("bench-results/tuning/epsilon_ceiling.json")
NOISE_SCALES = (0.0, 0.5, 1.0, 1.5)  # x Retrain set B's mean per-row spread


def _phi(model, images, labels) -> np.ndarray:
    return logit_confidence(predict_logits(model, images), labels)


def ceiling_scores(a: np.ndarray, b: np.ndarray, dm: np.ndarray, phi0: np.ndarray,
                   targets: np.ndarray, seed: int) -> dict[str, float]:
    """F against Retrain set `a` ((N, rows) each) of set `b`, of dm and of each per-row
    centre plus independent noise of b's spread; `phi0` is the original's confidence."""
    n, spread = len(a), float(b.std(0, ddof=1).mean())
    rng = np.random.default_rng(seed)
    oracle = IsotonicRegression(out_of_bounds="clip").fit(phi0, b.mean(0)).predict(phi0)
    out = {"retrain_b": forgetting_quality(b, a, seed).score,
           "dm": forgetting_quality(dm, a, seed).score, "retrain_spread": spread}
    for name, centre in (("targets", targets), ("oracle_monotone", oracle),
                         ("retrain_b_mean", b.mean(0))):
        for scale in NOISE_SCALES:
            drawn = centre[None] + scale * spread * rng.standard_normal((n, len(centre)))
            out[f"{name}+{scale:g}sd"] = forgetting_quality(drawn, a, seed).score
    return out


def run_seed(seed: int, models: int, train_limit: int) -> dict[str, float]:
    cfg = fashion_config({"scenario": "random", "fraction": 0.1}, methods="dm", seeds=1,
                         seed_offset=seed, train_limit=train_limit, model="cnn",
                         epsilon_models=models)
    setup = seed_data(cfg, seed)
    forget = setup.train.where(setup.forget_mask)
    sets = {role: np.stack([_phi(train_role(cfg, setup, seed, role, k)[0], forget.images,
                                 forget.labels) for k in range(models)])
            for role in ("eps_a", "eps_b")}
    dm = np.stack([_phi(unlearn(Job("row", cfg, seed, "dm"), setup, k)[0], forget.images,
                        forget.labels) for k in range(models)])
    original, _, _ = train_role(cfg, setup, seed, "original")
    phi0 = _phi(original, forget.images, forget.labels)
    pool = setup.bundle.third_party
    targets = quantile_targets(phi0, forget.labels.numpy(),
                               _phi(original, pool.images, pool.labels), pool.labels.numpy())
    return ceiling_scores(sets["eps_a"], sets["eps_b"], dm, phi0, targets, seed)


def table(per_seed: dict[int, dict[str, float]]) -> str:
    keys = list(next(iter(per_seed.values())))
    head = "| row | " + " | ".join(f"seed {s}" for s in per_seed) + " | mean / Retrain B |"
    lines = [head, "|" + "---|" * (len(per_seed) + 2)]
    floor = np.mean([v["retrain_b"] for v in per_seed.values()])
    for key in keys:
        vals = [v[key] for v in per_seed.values()]
        share = "" if key == "retrain_spread" else f"{np.mean(vals) / floor:.0%}"
        lines.append(f"| {key} | " + " | ".join(f"{x:.4f}" for x in vals) + f" | {share} |")
    return "\n".join(lines)


def main() -> None:
    seeds = [int(s) for s in os.environ.get("CEILING_SEEDS", "100,101").split(",")]
    models = int(os.environ.get("CEILING_MODELS", "16"))
    limit = int(os.environ.get("CEILING_TRAIN_LIMIT", "10000"))
    if min(seeds) < 100:
        sys.exit("bench-ceiling runs on tuning seeds (>= 100) only")
    os.environ.setdefault("FORGETFLOW_THREADS", "1")
    per_seed = {s: run_seed(s, models, limit) for s in seeds}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"date": dt.date.today().isoformat(), "models": models,
                               "train_limit": limit, "scenario": "random 10%",
                               "per_seed": per_seed}, indent=1))
    print(table(per_seed))


if __name__ == "__main__":
    main()
