"""Code tier: the seconds-vs-size benchmark's plan, its BENCHMARKS.md section (speed-ups total
over total, the plot), the section replacement that keeps hand-written parts, and the
per-example spread that compares N runs of a method with N Retrains."""

from __future__ import annotations

import json

import numpy as np

from forgetflow.bench.run import phi_spread
from forgetflow.bench.scale import EVERY, SIZES, SWEPT, plan
from forgetflow.bench.text import KEEP_MARKER, replace_section
from forgetflow.report.bench_plot import SCALE_HEADING, scale_markdown


def test_plan_sweeps_sizes_for_both_models_and_runs_every_scenario_at_full_size() -> None:
    blocks = [(c.model, c.train_limit, c.scenario) for c in plan()]
    for model in ("cnn", "resnet8"):
        assert [b[1] for b in blocks if b[0] == model and b[2] == SWEPT["scenario"]] == list(SIZES)
    assert {b[2] for b in blocks if b[0] == "cnn" and b[1] is None} == {
        sc["scenario"] for sc in EVERY}
    assert all({"dm", "scrub"} <= set(c.methods) for c in plan())


def _row(method: str, seed: int, seconds: float, rows: int) -> dict:
    return {"method": method, "seed": seed, "seconds": seconds, "train_rows": rows,
            "forget_rows": rows // 10, "avg_gap": 0.0 if method == "retrain" else 0.5,
            "forget_acc": 0.9, "test_acc": 0.87, "asr": None}


def test_scale_section_reports_total_over_total_speedups_and_draws_the_plot(tmp_path) -> None:
    blocks = {"cnn-5000-random": [_row("retrain", 0, 10.0, 5000), _row("retrain", 1, 30.0, 5000),
                                  _row("dm", 0, 1.0, 5000), _row("dm", 1, 3.0, 5000)],
              "cnn-all-random": [_row("retrain", 0, 100.0, 54000), _row("dm", 0, 2.0, 54000)]}
    meta = {"command": "make bench-scale", "machine": "m", "commit": "abc", "date": "d",
            "minutes": 1.0, "workers": 2, "threads": "1", "baseline": "scrub",
            "load_after": [1.0, 1.0, 1.0]}
    (tmp_path / "scale").mkdir()
    (tmp_path / "scale" / "scale.json").write_text(json.dumps({"meta": meta, "blocks": blocks}))
    plot = tmp_path / "plot.png"
    text = scale_markdown(tmp_path, plot)
    assert text.startswith(SCALE_HEADING)
    # 40 s of Retrain over 4 s of dm: 10x (the per-seed minimum is also 10x)
    assert "| cnn | 5000 | random | 500 | dm | 2 | 2.0 | 10.0× (10.0×) |" in text
    assert "| cnn | 54000 | random | 5400 | dm | 1 | 2.0 | 50.0× (50.0×) |" in text
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert scale_markdown(tmp_path / "missing", plot) == ""


def test_replace_section_swaps_one_generated_section_and_keeps_the_rest() -> None:
    doc = "\n".join(["# B", "", "## A", "a", "## Seconds vs training-set size", "old", "",
                     "## C", "c", KEEP_MARKER, "", "## Hand", "mine"])
    new = replace_section(doc, SCALE_HEADING, f"{SCALE_HEADING}\n\nnew\n")
    assert "old" not in new and "new" in new
    assert new.index("## A") < new.index("new") < new.index("## C") < new.index(KEEP_MARKER)
    assert new.rstrip().endswith("mine")
    fresh = replace_section("# B\n\n## A\na\n" + KEEP_MARKER + "\n## Hand\n", SCALE_HEADING,
                            f"{SCALE_HEADING}\nbody")
    assert fresh.index("body") < fresh.index(KEEP_MARKER)


def test_phi_spread_is_zero_for_copies_and_grows_with_disagreement() -> None:
    rng = np.random.default_rng(0)
    one = rng.normal(size=50)
    assert phi_spread(np.stack([one] * 4)) == 0.0
    narrow = one + rng.normal(scale=0.1, size=(4, 50))
    wide = one + rng.normal(scale=1.0, size=(4, 50))
    assert 0 < phi_spread(narrow) < phi_spread(wide)
    assert np.isnan(phi_spread(one[None, :]))


def test_a_profile_run_removes_only_scenario_results(tmp_path) -> None:
    """make bench clears the last run's scenario files, never other benches' results."""
    from forgetflow.bench.report import is_scenario_result

    (tmp_path / "cnn-10000-class-0.json").write_text(json.dumps({"rows": [], "config": {}}))
    (tmp_path / "folder-scale.json").write_text(json.dumps({"rows": [], "meta": {}}))
    (tmp_path / "broken.json").write_text("{")
    kept = [p.name for p in sorted(tmp_path.iterdir()) if not is_scenario_result(p)]
    assert kept == ["broken.json", "folder-scale.json"]
