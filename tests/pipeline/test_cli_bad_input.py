"""Bad input through the real CLI: a clear error, a non-zero exit, and nothing changed in the
ledger, the registry or the data registry. An empty batch is a no-op with exit 0."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.registry import Registry
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app

runner = CliRunner()


def state() -> dict:
    """Everything a bad request must leave untouched."""
    ws = Workspace.from_env()
    repo = DataRepo(ws)
    git = subprocess.run(["git", "-C", str(repo.path), "status", "--porcelain"],
                         capture_output=True, text=True, check=True).stdout
    registry = Registry(ws)
    return {
        "ledger": [r.detail() for r in Ledger(ws.ledger_url).list()],
        "registry": [(r.version, sorted(r.aliases), r.tags) for r in registry.versions("ff-test")],
        "data": (repo.tags(), repo.version().rev, git),
    }


def ids_file(tmp: Path, ids: list[str]) -> str:
    path = tmp / "ids.txt"
    path.write_text("\n".join(ids) + "\n")
    return str(path)


def train_ids(label: int | None = None) -> list[str]:
    repo = DataRepo(Workspace.from_env())
    m = repo.manifest(repo.version())
    mask = m.split == "train"
    if label is not None:
        mask &= m.labels == label
    return m.ids[mask].tolist()


def latin1_file(tmp: Path, name: str) -> str:
    """A file that is not UTF-8 (Latin-1 bytes), as a spreadsheet export might be."""
    path = tmp / name
    path.write_bytes("digits:train:1\ncaf\xe9\n".encode("latin-1"))
    return str(path)


def trigger_file(tmp: Path, text: str) -> str:
    path = tmp / "trigger.json"
    path.write_text(text)
    return str(path)


BIG = "9" * 20  # past 64-bit integers: no request, not an overflow
CASES = {
    "unknown sample id": (lambda t: ["--kind", "samples", "--ids-file",
                                     ids_file(t, ["digits:train:99999"])], "unknown sample id"),
    "malformed sample id": (lambda t: ["--kind", "samples", "--ids-file",
                                       ids_file(t, ["not an id"])], "malformed sample id"),
    "ids file not utf-8": (lambda t: ["--kind", "samples", "--ids-file",
                                      latin1_file(t, "ids.txt")], "is not UTF-8 text"),
    "trigger not utf-8": (lambda t: ["--kind", "backdoor", "--trigger",
                                     latin1_file(t, "trigger.json")], "cannot read trigger"),
    "unknown subject": (lambda t: ["--kind", "subject", "--subject", "nobody"],
                        "unknown subject"),
    "class outside labels": (lambda t: ["--kind", "class", "--label", "10"],
                             "outside the label space"),
    "negative class": (lambda t: ["--kind", "class", "--label", "-1"], "greater than or equal"),
    "trigger not json": (lambda t: ["--kind", "backdoor", "--trigger", trigger_file(t, "{")],
                         "cannot read trigger"),
    "trigger unknown key": (lambda t: ["--kind", "backdoor", "--trigger",
                                       trigger_file(t, '{"shape": "star"}')], "shape"),
    "trigger out of bounds": (lambda t: ["--kind", "backdoor", "--trigger",
                                         trigger_file(t, '{"position": [14, 14], "size": 4}')],
                              "falls outside"),
    "trigger target outside labels": (lambda t: ["--kind", "backdoor", "--trigger",
                                                 trigger_file(t, '{"target": 12}')],
                                      "target 12 outside"),
    "whole train set": (lambda t: ["--kind", "samples", "--ids-file", ids_file(t, train_ids())],
                        "entire training set"),
    "empties a class": (lambda t: ["--kind", "samples", "--ids-file",
                                   ids_file(t, train_ids(label=4))], "with no training samples"),
    "unknown model": (lambda t: ["--kind", "class", "--label", "1", "--model", "nope"],
                      "no registered model named 'nope'"),
    "selector of another kind": (lambda t: ["--kind", "class", "--subject", "subj-00001"],
                                 "needs `label`"),
    "unknown kind": (lambda t: ["--kind", "bogus", "--label", "1"],
                     "invalid DeletionRequest: kind"),
    "trigger position of two errors": (lambda t: ["--kind", "backdoor", "--trigger",
                                                  trigger_file(t, '{"position": "middle"}')],
                                       "position"),
    "trigger size true": (lambda t: ["--kind", "backdoor", "--trigger",
                                     trigger_file(t, '{"size": true}')], "size"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_submission_changes_nothing(case: str, trained: dict, tmp_path: Path) -> None:
    args, message = CASES[case]
    before = state()
    result = runner.invoke(app, ["request", "submit", *args(tmp_path), "--json"])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "https://" not in result.stderr
    assert state() == before


@pytest.mark.parametrize("args, message", [
    (["process", "--model", "nope", "--json"], "no registered model named 'nope'"),
    (["promote", "--model", "nope", "--json"], "no registered model named 'nope'"),
    (["promote", "--version", "99", "--json"], "no version or alias '99'"),
    (["promote", "--json"], "no challenger to promote"),
    (["request", "show", "12345", "--json"], "no deletion request with id 12345"),
    (["request", "show", BIG], f"no deletion request with id {BIG}"),
    (["request", "withdraw", BIG, "--reason", "x"], f"no deletion request with id {BIG}"),
    (["receipt", "verify", BIG], f"no deletion request with id {BIG}"),
    (["request", "list", "--status", "bogus"], "unknown status 'bogus'"),
    (["report", "champion", "--out", "."], "cannot write the report to ."),
])
def test_bad_model_or_id_changes_nothing(args: list[str], message: str, trained: dict) -> None:
    before = state()
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert state() == before


def test_empty_batch_is_a_noop(trained: dict) -> None:
    before = state()
    result = runner.invoke(app, ["process", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"request_ids": []}
    assert "nothing to do" in result.stderr
    assert state() == before


def test_submit_is_idempotent_and_listed(trained: dict) -> None:
    args = ["request", "submit", "--kind", "class", "--label", "2", "--idempotency-key", "k-1",
            "--json"]
    first = json.loads(runner.invoke(app, args).stdout)
    second = json.loads(runner.invoke(app, args).stdout)
    assert first == second and first["status"] == "pending"
    listed = json.loads(runner.invoke(app, ["request", "list", "--json"]).stdout)
    assert [r["id"] for r in listed].count(first["id"]) == 1
    assert set(listed[0]) == {"id", "kind", "status", "reason", "model_version", "due_at"}
    shown = json.loads(runner.invoke(app, ["request", "show", str(first["id"]), "--json"]).stdout)
    assert shown["payload"] == {"label": 2} and shown["receipt"] is None
    for other in (["--kind", "class", "--label", "99"], ["--kind", "subject", "--subject",
                                                         "subj-00010"]):
        reused = runner.invoke(app, ["request", "submit", *other, "--idempotency-key", "k-1"])
        assert reused.exit_code == 2 and "already names request" in reused.stderr
        assert "Traceback" not in reused.output
    listed = json.loads(runner.invoke(app, ["request", "list", "--json"]).stdout)
    assert [r["id"] for r in listed] == [first["id"]]


def test_bad_unlearning_params_refused_before_any_write(trained: dict, params_file: Path,
                                                        tmp_path: Path) -> None:
    """A typo in params' unlearning section stops `process` before the batch claims,
    commits or registers anything."""
    import yaml

    submitted = runner.invoke(app, ["request", "submit", "--kind", "class", "--label", "2"])
    assert submitted.exit_code == 0, submitted.output
    bad = yaml.safe_load(params_file.read_text())
    bad["unlearn"]["escalation"] = [{"method": "retrian", "config": {}}]
    path = tmp_path / "bad-params.yaml"
    path.write_text(yaml.safe_dump(bad))
    before = state()
    result = runner.invoke(app, ["process", "--params", str(path), "--json"])
    assert result.exit_code == 2, result.output
    assert "unlearn.escalation[0]" in result.stderr and "retrian" in result.stderr
    assert state() == before


def test_an_ids_file_saved_with_a_byte_order_mark_names_its_first_id(trained: dict,
                                                                     tmp_path: Path) -> None:
    """Editors on Windows start UTF-8 files with a BOM; it is not part of the first id."""
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeff".encode() + "\r\n".join(train_ids()[:2]).encode() + b"\r\n")
    result = runner.invoke(app, ["request", "submit", "--kind", "samples", "--ids-file",
                                 str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert "request names 2 training sample(s)" in result.stderr


def test_verifying_the_receipt_of_an_open_request_says_there_is_none_yet(trained: dict) -> None:
    submitted = runner.invoke(app, ["request", "submit", "--kind", "class", "--label", "3",
                                    "--json"])
    rid = json.loads(submitted.stdout)["id"]
    result = runner.invoke(app, ["receipt", "verify", str(rid)])
    assert result.exit_code == 1
    assert "MISSING" in result.stderr and "the request is pending" in result.stderr
    assert "MISMATCH" not in result.stderr and "receipt says" not in result.stderr
