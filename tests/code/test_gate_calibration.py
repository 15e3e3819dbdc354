"""The gate-threshold calibration rule on constructed records: Retrain must pass, the sanity
rows must fail, and an overlap is reported as such (never hidden by a threshold)."""

from __future__ import annotations

from forgetflow.bench.gate_calibration import statistic, threshold


def _rec(method: str, check: str, value: float, noise: float = 0.0, case: str = "a") -> dict:
    ev = {"check": check, "value": value, "noise": noise}
    return {"method": method, "check": check, "case": case, "stat": statistic(ev, 1.0), **ev}


def test_max_check_goes_halfway_between_worst_retrain_and_best_sanity_row() -> None:
    recs = [_rec("retrain", "relearn_gap", -0.02), _rec("retrain_fresh", "relearn_gap", 0.01),
            _rec("identity", "relearn_gap", 0.09), _rec("identity", "relearn_gap", 0.07),
            _rec("dm", "relearn_gap", 0.5)]  # other rows never move the threshold
    t = threshold(recs)
    assert t["separated"] and t["threshold"] == 0.04 and t["kind"] == "max"


def test_noise_is_taken_off_before_comparing() -> None:
    assert statistic({"check": "reimplant_gap", "value": 0.3, "noise": 0.1}, 2.0) \
        == 0.3 - 0.2
    assert statistic({"check": "class_feature_drop", "value": 0.3, "noise": 0.1}, 2.0) == 0.3


def test_min_check_and_an_overlap_keeps_retrain_passing() -> None:
    sep = threshold([_rec("retrain", "class_feature_drop", 0.1),
                     _rec("logit_mask", "class_feature_drop", 0.0),
                     _rec("identity", "class_feature_drop", 0.0)])
    assert sep["separated"] and sep["threshold"] == 0.05 and sep["kind"] == "min"
    overlap = threshold([_rec("retrain", "reimplant_gap", 0.3),
                         _rec("identity", "reimplant_gap", 0.2)])
    assert not overlap["separated"] and overlap["threshold"] == 0.3  # Retrain still passes
    assert overlap["unseparated_cases"] == ["a"]


def test_an_inseparable_case_does_not_drag_the_threshold_onto_retrain() -> None:
    recs = [_rec("retrain", "relearn_gap", 0.00, case="big"),
            _rec("identity", "relearn_gap", 0.04, case="big"),
            _rec("retrain", "relearn_gap", 0.01, case="small"),  # the worst Retrain anywhere
            _rec("identity", "relearn_gap", -0.02, case="small")]  # no power here
    t = threshold(recs)
    assert t["threshold"] == 0.025 and t["unseparated_cases"] == ["small"]
    assert not t["separated"]
