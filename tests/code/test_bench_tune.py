"""dm's tuning run: never touches the reported seeds, varies one knob at a time, and picks the
winner by the stated rule (fewest missed constraints, then mean avg_gap)."""

from __future__ import annotations

import pytest

from forgetflow.bench.tune import SCENARIOS, neighbours, summarize, tuning_config, winner


def test_tuning_seeds_are_disjoint_from_reported_ones() -> None:
    for sc in SCENARIOS:
        cfg = tuning_config(sc, seeds=3, train_limit=1000)
        assert min(cfg.report_seeds()) >= 100 and cfg.methods[-1] == "dm"
    assert not any(sc.get("forget_class") == 0 for sc in SCENARIOS)  # reported class


def test_neighbours_change_one_knob_and_drop_defaults() -> None:
    around = neighbours({"lr": 1e-3})
    assert "lr=0.001" in around and "default" in around  # lr back to its default
    for name, over in around.items():
        assert len(set(over) - {"lr"}) <= 1, name


def _rows(name: str, gap: float, **extra) -> list[dict]:
    return [{"method": name, "seed": s, "avg_gap": gap, "seconds": 1.0, **extra}
            for s in (100, 101)]


@pytest.mark.parametrize("asr", [0.01, 0.05])
def test_winner_needs_the_constraints_before_the_smallest_gap(asr: float) -> None:
    results = {
        "class": _rows("a", 0.1, forget_acc=0.0, relearn_acc_gap=1.0)
        + _rows("b", 0.5, forget_acc=0.0, relearn_acc_gap=1.0),
        "backdoor": _rows("a", 0.1, asr=asr) + _rows("b", 0.5, asr=0.01),
    }
    table = summarize(results)
    assert table["a"]["misses"] == (asr > 0.02)
    assert winner(table) == ("a" if asr <= 0.02 else "b")


@pytest.mark.parametrize("value", ["0", "-1", "two", ""])
def test_bad_tuning_knobs_stop_before_any_work(value: str, monkeypatch) -> None:
    from forgetflow.bench.tune import env_int

    monkeypatch.setenv("TUNE_ROUNDS", value)
    with pytest.raises(SystemExit, match="TUNE_ROUNDS must be an integer >= 1"):
        env_int("TUNE_ROUNDS", 2, 1)
    monkeypatch.setenv("TUNE_ROUNDS", "3")
    assert env_int("TUNE_ROUNDS", 2, 1) == 3
