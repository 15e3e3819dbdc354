"""One scenario of the benchmark, phase by phase (see forgetflow.bench.jobs), through any
`mapper(fn, jobs) -> results` (the builtin map, a process pool's map, a Dask runner)."""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict

import numpy as np

from forgetflow.bench.harness import BenchConfig, warm_up_torch
from forgetflow.bench.jobs import Job, run_job, seed_data
from forgetflow.bench.runner import RunnerSpec, map_jobs
from forgetflow.core.epsilon import final_score, forgetting_quality, forgetting_quality_split
from forgetflow.core.metrics import avg_gap

Mapper = Callable[[Callable[[Job], dict], list[Job]], Iterable[dict]]
GOLD = ("retrain", "retrain_fresh")


def serial_map(fn: Callable[[Job], dict], jobs: list[Job]) -> list[dict]:
    return [fn(j) for j in jobs]


def process_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes started fresh (spawn), each paying torch's lazy imports before its
    first job: a fork of a parent that already holds torch's threads can deadlock, and a
    cold import inside a timed job would bill start-up to a method."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=warm_up_torch)


def _epsilon_labels(cfg: BenchConfig, rows: list[dict]) -> list[tuple[str, str, tuple]]:
    """(label, method, overrides) of every row that carries the epsilon score."""
    wanted = cfg.epsilon_methods
    out, seen = [], set()
    for r in rows:
        if r["seed"] != cfg.report_seeds()[0] or r["method"] in seen:
            continue
        if wanted is None or r["base"] in wanted:
            seen.add(r["method"])
            out.append((r["method"], r["base"], tuple(sorted(r.get("overrides", {}).items()))))
    return out


def training_jobs(cfg: BenchConfig) -> list[Job]:
    jobs = [Job("train", cfg, s, role) for s in cfg.report_seeds()
            for role in ("original", "retrain", "retrain_fresh")]
    if cfg.epsilon_models:
        s0 = cfg.report_seeds()[0]
        jobs += [Job("train", cfg, s0, role, model_index=k)
                 for k in range(cfg.epsilon_models) for role in ("eps_a", "eps_b")]
    return jobs


def time_matched_jobs(cfg: BenchConfig, rows: list[dict]) -> list[Job]:
    """Each listed method again with budget = dm's seconds / its own seconds (same seed)."""
    jobs = []
    for seed in cfg.report_seeds():
        by = {r["method"]: r for r in rows if r["seed"] == seed}
        if "dm" not in by or by["dm"].get("seconds") is None:
            continue
        for name in cfg.time_matched:
            if name in by and (by[name].get("seconds") or 0) > 0:
                budget = min(1.0, by["dm"]["seconds"] / by[name]["seconds"])
                jobs.append(Job("row", cfg, seed, name, f"{name}@dm_time",
                                (("budget", round(budget, 6)),)))
    return jobs


def epsilon_scores(cfg: BenchConfig, rows: list[dict], mapper: Mapper) -> dict[str, dict]:
    """F (challenge semantics, with its 95% bootstrap interval and the older split estimator)
    and the challenge's final score per row label (first report seed); `retrain_fresh` holds
    the Retrain-vs-Retrain noise floor (set B against set A)."""
    s0, n = cfg.report_seeds()[0], cfg.epsilon_models
    labels = [("retrain", "retrain", ()), ("retrain_fresh", "retrain_fresh", ())]
    labels += [x for x in _epsilon_labels(cfg, rows) if x[1] not in GOLD]
    jobs = [Job("epsilon", cfg, s0, method, label, overrides, k)
            for label, method, overrides in labels for k in range(n)]
    models: dict[str, list[dict]] = {}
    for res in mapper(run_job, jobs):
        models.setdefault(res["label"], []).append(res)
    models = {k: v for k, v in models.items() if not any("error" in m for m in v)}
    ref = models.pop("retrain")
    r_phi = np.stack([m["phi"] for m in ref])
    ra_r, ta_r = np.mean([m["retain_acc"] for m in ref]), np.mean([m["test_acc"] for m in ref])
    out = {"retrain": {"phi_spread": phi_spread(r_phi)}}
    for label, ms in models.items():
        u_phi = np.stack([m["phi"] for m in ms])
        q = forgetting_quality(u_phi, r_phi, s0)  # challenge semantics, 95% bootstrap interval
        ra_u, ta_u = np.mean([m["retain_acc"] for m in ms]), np.mean([m["test_acc"] for m in ms])
        out[label] = {"epsilon_score": q.score,
                      "epsilon_ci_low": q.ci_low, "epsilon_ci_high": q.ci_high,
                      "epsilon_split": forgetting_quality_split(u_phi, r_phi, s0)[0],
                      "challenge_score": final_score(q.score, ra_u, ra_r, ta_u, ta_r),
                      "epsilon_median": float(np.median(q.eps)),
                      "epsilon_inf_share": float(np.mean(~np.isfinite(q.eps))),
                      "phi_spread": phi_spread(u_phi)}
    return out


def phi_spread(phi: np.ndarray) -> float:
    """How much N models of one method disagree per forget example: the mean over examples of
    the std (ddof 1) of the logit-scaled confidence across models. Retrain's is the target; a
    method whose N runs are near-copies of each other scores far below it, and the epsilon
    score's thresholds then separate it from Retrain (issue: variance like Retrain's)."""
    return float(np.mean(phi.std(0, ddof=1))) if len(phi) > 1 else float("nan")


def run_scenario(cfg: BenchConfig, mapper: Mapper = serial_map) -> dict:
    """All phases; rows for identity, (logit_mask,) Retrain and its noise floor always present.
    The load average is recorded before and after (other work on the machine shows here)."""
    warm_up_torch()
    load_before = os.getloadavg()
    trained = list(mapper(run_job, training_jobs(cfg)))
    row_jobs = [Job("row", cfg, s, m, m) for s in cfg.report_seeds() for m in (*GOLD,
                                                                              *cfg.methods)]
    rows = list(mapper(run_job, row_jobs))
    rows += list(mapper(run_job, time_matched_jobs(cfg, rows)))
    epsilon = epsilon_scores(cfg, rows, mapper) if cfg.epsilon_models else {}
    for seed in cfg.report_seeds():
        seed_rows = [r for r in rows if r["seed"] == seed]
        gold = next(r for r in seed_rows if r["method"] == "retrain")
        for r in seed_rows:
            if "error" in r:
                r["avg_gap"] = r["speedup"] = None
                continue
            r["avg_gap"] = avg_gap(r, gold)
            r["speedup"] = gold["seconds"] / r["seconds"] if r["seconds"] > 0 else None
            if seed == cfg.report_seeds()[0]:
                r.update(epsilon.get(r["method"], {}))
    per_seed = []
    for seed in cfg.report_seeds():
        info = dict(_seed_info(cfg, seed))
        info.update({f"{t['role']}_cached": t["cached"] for t in trained
                     if t["seed"] == seed and t["role"] in ("original", "retrain")})
        per_seed.append({"seed": seed, **info})
    return {"config": asdict(cfg), "seeds": per_seed, "rows": rows,
            "load_average": {"before": load_before, "after": os.getloadavg()},
            "threads": os.environ.get("FORGETFLOW_THREADS", "all")}


def _seed_info(cfg: BenchConfig, seed: int) -> dict:

    return seed_data(cfg, seed).info


def run_bench(cfg: BenchConfig, runner: RunnerSpec | None = None) -> dict:
    """One scenario, all seeds, through `runner` (sequential, or Dask via
    forgetflow.bench.runner): the jobs of forgetflow.bench.jobs are pure and picklable."""
    def mapper(fn, jobs):
        return map_jobs([functools.partial(fn, job) for job in jobs], runner)

    return run_scenario(cfg, mapper)
