"""The gate's utility check allows for noise in the paired accuracy difference: two flipped
answers on a 40-image test split are no evidence of damage, the same 5% on 10,000 images is."""

from __future__ import annotations

import numpy as np

from forgetflow.core.params import GateParams
from forgetflow.pipeline.gate import decide, paired_drop


def drop_check(n: int, flipped: int, z: float = 2.0) -> dict:
    parent = np.ones(n, dtype=bool)
    new = parent.copy()
    new[:flipped] = False
    drop, se = paired_drop(parent, new)
    assert abs(drop - flipped / n) < 1e-12
    (check,) = decide({}, [], 1.0, 1.0 - drop, GateParams(test_noise_z=z), se)
    assert check["check"] == "test_acc_drop" and abs(check["value"] - drop) < 1e-12
    return check


def test_a_few_flips_on_a_tiny_test_split_pass() -> None:
    assert drop_check(40, 2)["passed"]


def test_the_same_drop_on_a_large_split_fails() -> None:
    assert not drop_check(10_000, 500)["passed"]


def test_without_allowance_the_limit_is_strict() -> None:
    assert not drop_check(40, 2, z=0.0)["passed"]
    assert drop_check(10_000, 150, z=0.0)["passed"]


def test_rows_both_get_wrong_add_no_noise() -> None:
    parent = np.array([True, False, True, False])
    drop, se = paired_drop(parent, parent.copy())
    assert drop == 0.0 and se == 0.0


def test_no_rows_is_not_a_pass() -> None:
    drop, se = paired_drop(np.zeros(0, dtype=bool), np.zeros(0, dtype=bool))
    (check,) = decide({}, [], float("nan"), float("nan"), GateParams(), se)
    assert np.isnan(drop) and not check["passed"]
