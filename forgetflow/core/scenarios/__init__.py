"""The scenarios a request can call for, by name: each module owns one (docs/method.md)."""

from forgetflow.core.scenarios.backdoor import BACKDOOR
from forgetflow.core.scenarios.base import (
    DepthCheck,
    ForgetTarget,
    OutputCheck,
    Scenario,
    ScenarioError,
)
from forgetflow.core.scenarios.forget_class import CLASS
from forgetflow.core.scenarios.samples import SAMPLES

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (SAMPLES, CLASS, BACKDOOR)}


def scenario_named(name: str) -> Scenario:
    """The registered scenario called `name` (as stored in tags, payloads and bench JSON)."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ScenarioError(f"unknown scenario {name!r}; expected one of "
                            f"{sorted(SCENARIOS)}") from None


__all__ = ["BACKDOOR", "CLASS", "SAMPLES", "SCENARIOS", "DepthCheck", "ForgetTarget",
           "OutputCheck", "Scenario", "ScenarioError", "scenario_named"]
