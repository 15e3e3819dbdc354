"""The bad-input corpus (issue 9 item 5): malformed input through the CLI, the Python API and
the UI flow's parameters. Each gets an error naming the field or option, exit code 2 from the
CLI, and changes nothing in the ledger, the registry or the data repo."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.registry import Registry
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app
from forgetflow.core.params import load_params
from forgetflow.core.requests import MAX_IDS, DeletionRequest
from forgetflow.pipeline.submission import validate_submission

from .conftest import TINY_PARAMS
from .test_cli_bad_input import state

Make = Callable[[Path], Any]


@dataclass(frozen=True)
class Bad:
    """One malformed input: where it enters, how to build it, what the error must say."""

    surface: str  # cli | api | ui
    name: str
    make: Make
    expect: str  # regex; names the field or option


def write(tmp: Path, name: str, content: str | bytes) -> str:
    path = tmp / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


def ids_args(*ids: str) -> Make:
    return lambda t: ["--kind", "samples", "--ids-file", write(t, "ids.txt", "\n".join(ids))]


def trigger_args(text: str) -> Make:
    return lambda t: ["--kind", "backdoor", "--trigger", write(t, "trigger.json", text)]


def params_args(text: str | bytes, verb: tuple[str, ...] = ("request", "submit", "--kind",
                                                            "class", "--label", "1")) -> Make:
    return lambda t: [*verb, "--params", write(t, "params.yaml", text)]


def sparse_file(t: Path) -> list[str]:
    path = t / "huge-ids.txt"
    with path.open("wb") as fh:
        fh.truncate(40 << 20)  # 40 MiB of holes: costs no disk, must be refused unread
    return ["--kind", "samples", "--ids-file", str(path)]


TAMPERED = {
    "yaml syntax": "train: {epochs: [\n",
    "unknown key": yaml.safe_dump({**TINY_PARAMS, "train": {**TINY_PARAMS["train"],
                                                            "epochz": 3}}),
    "wrong type": yaml.safe_dump({**TINY_PARAMS, "train": {**TINY_PARAMS["train"],
                                                           "epochs": "many"}}),
    "not a mapping": "- data\n- train\n",
}
TAMPERED_EXPECT = {"yaml syntax": "not valid YAML", "unknown key": "epochz",
                   "wrong type": "epochs", "not a mapping": "must be a mapping"}

SUBMIT = ("request", "submit")
NOT_AN_ID = r"Invalid value for 'request_id'"
CLI = [
    ("unknown kind", lambda t: ["--kind", "forget-everything"], r"kind"),
    ("label not an integer", lambda t: ["--kind", "class", "--label", "abc"],
     r"--label 'abc' names no class"),
    ("label NaN", lambda t: ["--kind", "class", "--label", "nan"], r"--label 'nan' names no class"),
    ("label negative", lambda t: ["--kind", "class", "--label", "-1"], r"label"),
    ("label outside label space", lambda t: ["--kind", "class", "--label", "10"],
     r"label: class 10 is outside the label space"),
    ("label astronomically large", lambda t: ["--kind", "class", "--label", str(10 ** 30)],
     r"label: class \d+ is outside the label space"),
    ("ids file empty", lambda t: ["--kind", "samples", "--ids-file", write(t, "e.txt", "")],
     r"--ids-file .* holds no sample ids"),
    ("ids file only blank lines", lambda t: ["--kind", "samples", "--ids-file",
                                             write(t, "b.txt", "\n  \n\t\n")],
     r"--ids-file .* holds no sample ids"),
    ("ids file not utf-8", lambda t: ["--kind", "samples", "--ids-file",
                                      write(t, "l.txt", "digits:train:1\ncaf\xe9".encode(
                                          "latin-1"))], r"--ids-file .* is not UTF-8"),
    ("ids file missing", lambda t: ["--kind", "samples", "--ids-file", str(t / "absent.txt")],
     r"ids file .* does not exist"),
    ("ids file huge", sparse_file, r"--ids-file .* bytes; at most"),
    ("id with path traversal", ids_args("digits:train:../../etc/passwd"),
     r"ids[\s\S]*malformed sample id"),
    ("id that is a path", ids_args("../../../etc/passwd"), r"ids[\s\S]*malformed sample id"),
    # a file may be named anything printable, so these are well-formed keys no row has
    ("id with SQL injection", ids_args("digits:train:1'; DROP TABLE requests;--"),
     r"ids: 1 unknown sample id"),
    ("id with SQL tautology", ids_args("digits:train:1 OR 1=1"), r"ids: 1 unknown sample id"),
    ("duplicate ids", ids_args("digits:train:5", "digits:train:7", "digits:train:5"),
     r"ids[\s\S]*named more than once, e.g. digits:train:5"),
    ("more ids than any dataset", ids_args(*(f"digits:train:{i}" for i in range(MAX_IDS + 1))),
     rf"ids[\s\S]*at most {MAX_IDS} items"),
    ("id longer than allowed", ids_args("digits:train:" + "9" * 300),
     r"ids\.0[\s\S]*at most 200 characters"),
    ("unknown sample id", ids_args("digits:train:99999"), r"ids: 1 unknown sample id"),
    ("subject with SQL injection", lambda t: ["--kind", "subject", "--subject",
                                              "x' OR '1'='1"], r"subject: unknown subject"),
    ("subject that is a path", lambda t: ["--kind", "subject", "--subject", "../../etc/passwd"],
     r"subject: unknown subject"),
    ("subject huge", lambda t: ["--kind", "subject", "--subject", "s" * 10_000],
     r"subject[\s\S]*at most 200 characters"),
    ("subject blank", lambda t: ["--kind", "subject", "--subject", "   "],
     r"subject must not be blank"),
    ("subject with control characters", lambda t: ["--kind", "subject", "--subject",
                                                   "subj\x1b[2J"], r"subject[\s\S]*pattern"),
    ("selector of another kind", lambda t: ["--kind", "class", "--subject", "subj-00001"],
     r"needs `label`"),
    ("trigger not JSON", trigger_args("{"), r"cannot read trigger"),
    ("trigger value NaN", trigger_args('{"value": NaN}'), r"trigger\.value"),
    ("trigger value infinite", trigger_args('{"value": Infinity}'), r"trigger\.value"),
    ("trigger value above 1", trigger_args('{"value": 2.0}'), r"trigger\.value"),
    ("trigger bigger than the image", trigger_args('{"size": 100}'),
     r"trigger: trigger of size 100 .* falls outside"),
    ("trigger placed off the image", trigger_args('{"position": [14, 14], "size": 4}'),
     r"trigger: .*falls outside"),
    ("trigger negative position", trigger_args('{"position": [-1, 2]}'), r"trigger\.position"),
    ("trigger unknown pattern", trigger_args('{"pattern": "star"}'), r"trigger\.pattern"),
    ("trigger target outside labels", trigger_args('{"target": 12}'),
     r"trigger: target 12 outside"),
    ("trigger unknown key", trigger_args('{"shape": "star"}'), r"trigger\.shape"),
    ("trigger is a list", trigger_args("[1, 2]"), r"trigger[\s\S]*dictionary"),
    ("trigger size not a number", trigger_args('{"size": "big"}'), r"trigger\.size"),
    ("unknown model", lambda t: ["--kind", "class", "--label", "1", "--model", "nope"],
     r"no registered model named 'nope'"),
    ("model name that is a path", lambda t: ["--kind", "class", "--label", "1", "--model",
                                             "../../etc"], r"no registered model named"),
    ("idempotency key huge", lambda t: ["--kind", "class", "--label", "1",
                                        "--idempotency-key", "k" * 300],
     r"idempotency_key[\s\S]*at most 200 characters"),
    ("idempotency key with control characters",
     lambda t: ["--kind", "class", "--label", "1", "--idempotency-key", "key\x07"],
     r"idempotency_key[\s\S]*pattern"),
    *[(f"params.yaml {k}", lambda t, v=v: params_args(v)(t)[2:], TAMPERED_EXPECT[k])
      for k, v in TAMPERED.items()],
    ("params.yaml not utf-8", lambda t: params_args(b"train: {epochs: \xff}\n")(t)[2:],
     r"not valid YAML"),
]
OTHER_CLI = [
    ("process with tampered params.yaml", params_args("x: [", ("process", "--json")),
     r"not valid YAML"),
    ("process unknown model", lambda t: ["process", "--model", "nope"],
     r"no registered model named 'nope'"),
    ("promote unknown version", lambda t: ["promote", "--version", "99"],
     r"no version or alias '99'"),
    ("promote version that is a path", lambda t: ["promote", "--version", "../1"],
     r"no version or alias '\.\./1'"),
    ("show id not a number", lambda t: ["request", "show", "1;DROP"], NOT_AN_ID),
    ("show unknown id", lambda t: ["request", "show", "99999"], r"no deletion request"),
    ("verify id not a number", lambda t: ["receipt", "verify", "x"], NOT_AN_ID),
    ("verify unknown id", lambda t: ["receipt", "verify", "424242"], r"no deletion request"),
]
API = [
    ("kind of wrong type", {"kind": 7}, r"kind"),
    ("ids a string", {"kind": "samples", "ids": "digits:train:1"}, r"ids[\s\S]*valid list"),
    ("ids holding a number", {"kind": "samples", "ids": [12]}, r"ids\.0"),
    ("label a float", {"kind": "class", "label": 2.5}, r"label"),
    ("label NaN", {"kind": "class", "label": math.nan}, r"label"),
    ("trigger value infinite", {"kind": "backdoor", "trigger": {"value": math.inf}},
     r"trigger\.value"),
    ("trigger huge", {"kind": "backdoor", "trigger": {"size": 10 ** 6}},
     r"trigger: .*falls outside"),
    ("unexpected field", {"kind": "class", "label": 1, "admin": True}, r"admin"),
    ("idempotency key of a megabyte", {"kind": "class", "label": 1,
                                       "idempotency_key": "k" * (1 << 20)},
     r"idempotency_key[\s\S]*at most 200"),
    ("duplicate ids", {"kind": "samples", "ids": ["digits:train:3"] * 2},
     r"named more than once"),
    ("unknown model", {"kind": "class", "label": 1, "model_name": "nope"},
     r"model: no registered model named 'nope'"),
    ("subject with a NUL byte", {"kind": "subject", "subject": "a\x00b"},
     r"subject[\s\S]*pattern"),
]
UI = [
    ("unknown kind", {"kind": "nope"}, r"kind"),
    ("id with path traversal", {"kind": "samples", "ids": ["digits:train:../x"]},
     r"malformed sample id"),
    ("label NaN", {"kind": "class", "label": math.nan}, r"label"),
    ("trigger bigger than the image", {"kind": "backdoor", "trigger": {"size": 64}},
     r"trigger: .*falls outside"),
    ("unknown model", {"kind": "class", "label": 1, "model_name": "nope"},
     r"no registered model named 'nope'"),
    ("no selector", {"kind": "subject"}, r"needs `subject`"),
]
CORPUS = ([Bad("cli", n, lambda t, m=m: [*SUBMIT, *m(t)], e) for n, m, e in CLI]
          + [Bad("cli", n, m, e) for n, m, e in OTHER_CLI]
          + [Bad("api", n, lambda t, r=r: r, e) for n, r, e in API]
          + [Bad("api", f"load_params: {k}", lambda t, v=v: write(t, "params.yaml", v),
                 TAMPERED_EXPECT[k]) for k, v in TAMPERED.items()]
          + [Bad("ui", n, lambda t, r=r: r, e) for n, r, e in UI])


def test_the_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 40
    assert {b.surface for b in CORPUS} == {"cli", "api", "ui"}


def api_submit(raw: dict[str, Any]) -> None:
    """What a Python caller does: validate, check against the data and registry, store."""
    ws = Workspace.from_env()
    request = DeletionRequest.model_validate(raw)
    name = request.model_name or load_params().registry.model_name
    validate_submission(request, DataRepo(ws), Registry(ws), name)
    Ledger(ws.ledger_url).submit(request, name)


@pytest.mark.parametrize("bad", CORPUS, ids=lambda b: f"{b.surface}: {b.name}")
def test_bad_input_is_refused_and_changes_nothing(bad: Bad, trained: dict, tmp_path: Path,
                                                  request: pytest.FixtureRequest) -> None:
    before = state()
    made = bad.make(tmp_path)
    if bad.surface == "cli":
        result = CliRunner().invoke(app, made)
        assert result.exit_code == 2, (result.exit_code, result.output[-2000:])
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert result.stdout == ""
        message = result.stderr
    elif bad.name.startswith("load_params"):
        with pytest.raises(ValueError) as caught:
            load_params(made)
        message = str(caught.value)
    elif bad.surface == "api":
        with pytest.raises(ValueError) as caught:  # pydantic, submission and ledger errors
            api_submit(made)
        message = str(caught.value)
    else:
        request.getfixturevalue("prefect_harness")
        from flows.request import request_deletion

        with pytest.raises(Exception) as caught:  # noqa: PT011 - Prefect wraps the type
            request_deletion(request=made)
        assert type(caught.value).__name__ in {"ParameterTypeError", "SubmissionError",
                                               "ValidationError"}, repr(caught.value)
        message = str(caught.value)
    assert re.search(bad.expect, message), f"{bad.expect!r} not in:\n{message[-2000:]}"
    assert "Traceback" not in message
    assert state() == before
