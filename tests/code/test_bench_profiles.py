"""`make bench` / `make bench-quick` profiles: every scenario's configuration validates (a typo
in a method list would otherwise surface an hour into the run), the epsilon score is carried
exactly where the issues ask for it, and result files never overwrite each other."""

from __future__ import annotations

import pytest

from forgetflow.bench.report import (
    EPSILON_SCENARIOS,
    PROFILES,
    build_config,
    result_name,
    scenarios,
)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_builds_every_scenario(profile: str) -> None:
    prof = PROFILES[profile]
    for pt, sc in scenarios(prof):
        cfg = build_config(sc, pt, prof)
        assert cfg.methods[:1] == ["identity"] and "dm" in cfg.methods
        assert cfg.model == pt["model"]
        assert ("logit_mask" in cfg.methods) == (sc["scenario"] == "class")
        assert set(cfg.time_matched) <= set(cfg.methods)
        if sc["scenario"] == "random" and pt["epsilon_models"]:
            assert cfg.epsilon_models >= 8  # the random-subset rows always carry F
        if cfg.epsilon_models:
            assert sc["scenario"] in EPSILON_SCENARIOS
        assert cfg.seeds >= 3 and cfg.seed_offset == 0  # reported seeds are 0..N-1
        if sc["scenario"] == "subject" and cfg.train_limit:  # ~80 rows, as 5 full-split subjects
            assert 60 <= cfg.subjects * 20 * cfg.train_limit / 70000 <= 100


def test_full_profile_covers_both_architectures_and_the_issue_scenarios() -> None:
    pairs = scenarios(PROFILES["full"])
    models = {pt["model"] for pt, _ in pairs}
    assert {"cnn", "resnet8"} <= models
    classes = {sc["forget_class"] for pt, sc in pairs if sc["scenario"] == "class"
               and pt["model"] == "cnn"}
    assert len(classes) >= 3
    fractions = {sc["fraction"] for _, sc in pairs if sc["scenario"] == "random"}
    assert {0.1, 0.02} <= fractions
    cnn_core = next(pt for pt, _ in pairs if pt["model"] == "cnn")
    assert "finetune_stamped" in build_config(
        {"scenario": "backdoor", "poison_rate": 0.01}, cnn_core, PROFILES["full"]).methods


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_result_files_are_distinct(profile: str) -> None:
    names = [result_name(pt, sc) for pt, sc in scenarios(PROFILES[profile])]
    assert len(names) == len(set(names))
