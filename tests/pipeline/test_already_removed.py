"""A request naming rows that earlier requests already removed is honoured, not rejected: it
takes the version that removed them (unlearned, then done once served) and its receipt says
which requests removed them. Ids that were never in the data are still refused, by count."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app

from .batches import processed_workspace

runner = CliRunner()


def cli(*args: str, code: int = 0) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if result.stdout.strip() else {}


def submit(tmp_path: Path, ids: list[str]) -> int:
    path = tmp_path / f"ids-{len(list(tmp_path.glob('ids-*')))}.txt"
    path.write_text("\n".join(ids) + "\n")
    return cli("request", "submit", "--kind", "samples", "--ids-file", str(path))["id"]


def verified(rid: int) -> dict[str, Any]:
    result = cli("receipt", "verify", str(rid))
    assert result["verified"] is True, result["mismatches"]
    return result


def test_already_removed_rows_complete_with_the_version_that_removed_them(
        prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = processed_workspace(tmp_path / "ws")
    for key, value in done["env"].items():
        monkeypatch.setenv(key, value)
    samples_request = done["requests"][1]
    removed = done["samples"]
    repo = DataRepo(Workspace.from_env())
    head = repo.manifest(repo.version())
    present = sorted(head.ids[(head.split == "train") & (head.subject != done["subject"])]
                     .tolist())[:2]

    # 1. every named row removed and served without: done at once, by v2, no id in the reason
    again = submit(tmp_path, removed[:5])
    batch = cli("process")
    assert batch["request_ids"] == [] and batch.get("model_version") is None
    view = cli("request", "show", str(again))
    assert (view["status"], view["model_version"]) == ("done", "2"), view
    assert view["receipt"]["rows_removed_earlier_by"] == [samples_request]
    assert view["receipt"]["request_excluded_rows"] == 5
    assert not any(i in json.dumps(view) for i in removed[:5])
    verified(again)

    # 1b. a subject whose rows an earlier subject request removed: the same, by that request
    subject_request = done["requests"][0]
    again_subject = cli("request", "submit", "--kind", "subject", "--subject",
                        done["subject"])["id"]
    cli("process")
    view = cli("request", "show", str(again_subject))
    first = cli("request", "show", str(subject_request))["receipt"]
    assert (view["status"], view["model_version"]) == ("done", "2"), view
    assert view["receipt"]["rows_removed_earlier_by"] == [subject_request]
    assert view["receipt"]["request_excluded_rows"] == first["request_excluded_rows"] > 0
    assert done["subject"] not in (view["reason"] or "")
    verified(again_subject)
    verified(subject_request)

    # 2. part removed, part still present: the present rows are unlearned as usual
    mixed = submit(tmp_path, removed[5:8] + present)
    batch = cli("process")
    assert batch["request_ids"] == [mixed] and batch["gate"] == "passed"
    v3 = batch["model_version"]
    assert cli("request", "show", str(mixed))["status"] == "unlearned"

    # 3. rows only removed by a request that is unlearned, not served: unlearned by v3 too
    follow = submit(tmp_path, present)
    cli("process")
    view = cli("request", "show", str(follow))
    assert (view["status"], view["model_version"], view["receipt"]) == ("unlearned", v3, None)
    assert cli("promote")["completed_requests"] == sorted([mixed, follow])
    receipt = cli("request", "show", str(follow))["receipt"]
    assert receipt["rows_removed_earlier_by"] == [mixed] and receipt["model_version"] == v3
    for rid in (again, mixed, follow, again_subject):
        verified(rid)

    # ids never in the data are refused at submission, by count only
    path = tmp_path / "unknown.txt"
    path.write_text(f"{removed[0]}\n{removed[0]}-never\n")
    refused = runner.invoke(app, ["request", "submit", "--kind", "samples", "--ids-file",
                                  str(path)])
    assert refused.exit_code == 2 and "1 unknown sample id" in refused.output
    assert removed[0] not in refused.output
    assert cli("audit")["clean"] is True
