"""Progress bars: shown on stderr when a person watches (a TTY, or FORGETFLOW_PROGRESS=on),
silent under --json and when stderr is not a terminal."""

from __future__ import annotations

import pytest

from forgetflow.core.data.tensors import DataBundle
from forgetflow.core.progress import (
    PROGRESS_ENV,
    progress_enabled,
    progress_iter,
    quiet_for_json,
)
from forgetflow.core.training import TrainConfig, spec_for, train_model


@pytest.mark.parametrize("mode, expected", [("on", True), ("off", False), ("auto", False)])
def test_switch(mode: str, expected: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROGRESS_ENV, mode)  # pytest captures stderr: `auto` sees no TTY
    assert progress_enabled() is expected


def test_json_turns_bars_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    quiet_for_json(["forgetflow", "request", "list"])
    assert PROGRESS_ENV not in __import__("os").environ
    quiet_for_json(["forgetflow", "process", "--json"])
    assert not progress_enabled()
    monkeypatch.setenv(PROGRESS_ENV, "on")
    quiet_for_json(["forgetflow", "process", "--json"])
    assert progress_enabled()


@pytest.mark.parametrize("mode", ["on", "auto"])
def test_training_bar_only_when_watched(mode: str, digits_bundle: DataBundle,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capfd: pytest.CaptureFixture) -> None:
    monkeypatch.setenv(PROGRESS_ENV, mode)
    small = digits_bundle.train.take(list(range(256)))
    train_model(small, spec_for(digits_bundle, "cnn"), TrainConfig(epochs=1, batch_size=64))
    list(progress_iter(range(3), "evaluate"))
    err = capfd.readouterr().err
    if mode == "on":
        assert "train" in err and "evaluate" in err
    else:
        assert err == ""
