"""Aggregation arithmetic on constructed rows: ddof=1, total-over-total speedup with the
per-seed minimum, per-seed pass counts, and a Pareto check that sees every row."""

from __future__ import annotations

import pytest

from forgetflow.bench.aggregate import pareto, pass_counts, speedups, summarize


def _row(method: str, seed: int, seconds: float, gap: float, **kw) -> dict:
    base = {"forget_acc": 0.0, "retain_acc": 0.9, "test_acc": 0.8, "test_acc_remaining": 0.9,
            "mia_efficacy": 1.0, "mia_loss_acc": 0.9}
    return {"method": method, "seed": seed, "seconds": seconds, "avg_gap": gap, **base, **kw}


@pytest.fixture()
def result() -> dict:
    rows = [_row("retrain", 0, 100.0, 0.0), _row("retrain", 1, 100.0, 0.0),
            _row("identity", 0, 0.01, 40.0, forget_acc=0.95),
            _row("identity", 1, 0.01, 40.0, forget_acc=0.95),
            _row("dm", 0, 2.0, 1.0), _row("dm", 1, 8.0, 2.0, forget_acc=0.03),
            _row("fast_head", 0, 1.0, 0.5), _row("fast_head", 1, 1.0, 0.5)]
    return {"config": {"scenario": "class"}, "seeds": [{"seed": 0}, {"seed": 1}], "rows": rows}


def test_speedup_is_total_over_total_with_the_per_seed_minimum(result: dict) -> None:
    total, low = speedups(result, "dm")
    assert total == pytest.approx(200.0 / 10.0)  # not mean(50, 12.5) = 31.25
    assert low == pytest.approx(12.5)


def test_std_uses_ddof_1(result: dict) -> None:
    mean, std = summarize(result)["dm"]["avg_gap"]
    assert mean == pytest.approx(1.5) and std == pytest.approx(0.7071, abs=1e-4)


def test_pass_counts_are_per_seed(result: dict) -> None:
    lines = pass_counts(result, "dm")
    forget = next(line for line in lines if " forget_acc:" in line)
    assert forget.startswith("- MISS") and "(seeds passing: 1/2)" in forget


def test_pareto_sees_every_row_including_head_only(result: dict) -> None:
    assert pareto(result, "dm") == ["fast_head"]
    assert pareto(result, "fast_head") == []


def test_where_dm_loses_lists_rows_closer_to_retrain(result: dict) -> None:
    from forgetflow.bench.text import where_dm_loses

    result["rows"].append({**result["rows"][0], "method": "retrain_fresh", "avg_gap": 0.2})
    for label, f in (("retrain_fresh", 0.8), ("dm", 0.1), ("fast_head", 0.5), ("identity", 0.0)):
        for r in result["rows"]:
            if r["method"] == label and r["seed"] == 0:
                r["epsilon_score"] = f
    lines = where_dm_loses(summarize(result))
    eps = next(line for line in lines if line.startswith("- epsilon_score"))
    assert "dm 0.90" in eps and "noise floor 0.20" in eps and "fast_head (0.50)" in eps
    assert "identity" not in eps  # sanity rows are never "baselines"


def test_regeneration_keeps_hand_written_sections() -> None:
    from forgetflow.bench.text import KEEP_MARKER, kept_sections

    old = ("# Benchmarks\n\n### class\n\n| table |\n\n## Time vs avg_gap\n\n![x](y)\n\n"
           "## Per-batch overhead\n\nmeasured by hand\n\n## CLI latency\n\n| t |\n")
    kept = kept_sections(old)
    assert kept == "## Per-batch overhead\n\nmeasured by hand"
    assert kept_sections(f"generated\n{KEEP_MARKER}\n\n## Mine\n\ntext\n") == "## Mine\n\ntext"


def test_targets_follow_the_model_and_the_depth_bounds(result: dict) -> None:
    from forgetflow.bench.aggregate import targets

    dropped = summarize(result)  # no relearn value: no calibrated budget, no relearn target
    assert not any("relearn" in n for n, _, _ in targets("class", dropped["dm"],
                                                         dropped["retrain"], dropped["identity"]))
    for r in result["rows"]:
        r["relearn_acc"] = 0.5
    stats = summarize(result)
    dm, gold, ident = stats["dm"], stats["retrain"], stats["identity"]
    names = [name for name, _, _ in targets("class", dm, gold, ident, model="resnet8")]
    assert names[0].startswith("speedup >= 20")
    assert any("relearn_acc" in n for n in names) and any("probe_acc" in n for n in names)
    assert targets("class", dm, gold, ident, model="cnn")[0][0].startswith("speedup >= 30")


def test_epsilon_target_and_front_compare_with_baselines(result: dict) -> None:
    from forgetflow.bench.aggregate import epsilon_check

    result["rows"] += [_row("scrub", 0, 50.0, 0.3), _row("scrub", 1, 50.0, 0.3)]
    for label, f in (("dm", 0.4), ("scrub", 0.6), ("fast_head", 0.9)):
        next(r for r in result["rows"] if r["method"] == label)["epsilon_score"] = f
    line = epsilon_check(summarize(result), "dm")
    assert line.startswith("- MISS") and "scrub 0.600" in line
    assert pareto(result, "dm", "epsilon") == ["fast_head"]  # faster and higher F
    assert pareto(result, "scrub", "epsilon") == ["fast_head"]
