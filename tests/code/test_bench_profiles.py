"""`make bench` / `make bench-quick` profiles: every scenario's configuration validates (a typo
in a method list would otherwise surface an hour into the run), and the epsilon score is
carried exactly where the issue asks for it."""

from __future__ import annotations

import pytest

from forgetflow.bench.report import EPSILON_SCENARIOS, PROFILES, build_config, scenarios


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_builds_every_scenario(profile: str) -> None:
    for sc in scenarios():
        cfg = build_config(sc, PROFILES[profile])
        assert cfg.methods[:1] == ["identity"] and "dm" in cfg.methods
        assert ("logit_mask" in cfg.methods) == (sc["scenario"] == "class")
        assert ("finetune_stamped" in cfg.methods) == (sc["scenario"] == "backdoor")
        assert set(cfg.time_matched) <= set(cfg.methods)
        wants_eps = sc["scenario"] in EPSILON_SCENARIOS
        assert (cfg.epsilon_models >= 8) == wants_eps
        assert cfg.seeds >= 2 and cfg.seed_offset == 0  # reported seeds are 0..N-1
        if sc["scenario"] == "subject":  # ~80 forget rows, as 5 subjects on the full split
            assert 60 <= cfg.subjects * 20 * cfg.train_limit / 70000 <= 100
