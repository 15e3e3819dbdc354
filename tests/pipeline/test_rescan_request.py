"""A user deletes an image named by a pending request from their folder (as the docs tell
them to), and a re-scan drops it before the batch: the request is still honoured (its other
rows go, and the deleted one is in the batch's forget set because the parent model saw it),
not rejected as naming an id that was "never in the data"."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from imagefolders import write_folder
from typer.testing import CliRunner

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.ledger import Ledger
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app
from forgetflow.core.data.manifest import parse_sample_id

from .test_own_images import folder_params

runner = CliRunner()


def cli(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def write_subjects(root: Path, owned: dict[str, list[str]]) -> None:
    with open(root / "subjects.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "subject"])
        writer.writerows((path, subject) for subject, paths in owned.items() for path in paths)


def trained_folder(params_file: Path, tmp_path: Path, subjects: int = 0):
    """A folder of images, data v1 and a champion trained on it; with `subjects`, subject
    k (named s0, s1, ...) owns the k-th pair of the last training images."""
    root = write_folder(tmp_path / "images", per_class=30, test_per_class=8)
    train = sorted(p.relative_to(root).as_posix() for p in (root / "train").rglob("*.*"))
    if subjects:
        write_subjects(root, {f"s{k}": train[-2 * k - 2:len(train) - 2 * k]
                              for k in range(subjects)})
    folder_params(params_file, f"folder:{root}")
    cli("data", "prepare")
    cli("train", "--epochs", "2")
    repo = DataRepo(Workspace.from_env())
    manifest = repo.manifest(repo.version())
    return root, repo, manifest


def test_a_request_survives_the_rescan_that_drops_one_of_its_images(
        prefect_harness: None, params_file: Path, tmp_path: Path) -> None:
    root, repo, manifest = trained_folder(params_file, tmp_path)
    named = sorted(manifest.ids[manifest.split == "train"].tolist())[:3]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(named) + "\n")
    rid = cli("request", "submit", "--kind", "samples", "--ids-file", str(ids_file))["id"]
    (root / "train" / parse_sample_id(named[0])[2]).unlink()  # the user deletes one image
    assert cli("data", "prepare")["data_version"] == "v2"  # the re-scan drops it
    batch = cli("process")
    assert batch["request_ids"] == [rid] and not batch["rejected"], batch
    request = Ledger(Workspace.from_env().ledger_url).get(rid)
    assert request.status in ("unlearned", "failed"), request.reason
    assert "never in the data" not in (request.reason or "")
    assert batch["data_version"] == "v3"
    kept = set(repo.manifest(repo.version("v3")).ids.tolist())
    assert not kept & set(named)


def test_requests_for_images_deleted_and_rescanned_away_are_honoured(
        prefect_harness: None, params_file: Path, tmp_path: Path) -> None:
    """The request names only deleted images, by id or by subject (pending before the
    re-scan, or submitted after it): the serving model still holds the rows, so the next
    batch forgets them for that request, and the request ends `done` once its version
    serves."""
    root, repo, manifest = trained_folder(params_file, tmp_path, subjects=8)
    train = manifest.split == "train"
    first, second = sorted(manifest.ids[train & (manifest.subject == "")].tolist())[:2]
    trained_on = [f"s{k}" for k in range(8)  # subjects whose rows the model trained on
                  if set(manifest.split[manifest.subject == f"s{k}"]) == {"train"}]
    owned = {name: manifest.ids[manifest.subject == name].tolist() for name in trained_on[:2]}
    assert len(owned) == 2 and all(len(ids) == 2 for ids in owned.values())
    s0, s1 = owned
    (tmp_path / "first.txt").write_text(first + "\n")
    pending = [cli("request", "submit", "--kind", "samples", "--ids-file",
                   str(tmp_path / "first.txt"))["id"],
               cli("request", "submit", "--kind", "subject", "--subject", s0)["id"]]
    for sid in (first, second, *owned[s0], *owned[s1]):
        (root / "train" / parse_sample_id(sid)[2]).unlink()
    prepared = cli("data", "prepare")
    assert prepared["data_version"] == "v2" and prepared["subjects_unmatched"] == 4
    (tmp_path / "second.txt").write_text(second + "\n")
    late = [cli("request", "submit", "--kind", "samples", "--ids-file",
                str(tmp_path / "second.txt"))["id"],  # used to be "never in the data"
            cli("request", "submit", "--kind", "subject", "--subject", s1)["id"]]
    never = runner.invoke(app, ["request", "submit", "--kind", "subject", "--subject", "s99"])
    assert never.exit_code != 0 and "unknown subject" in never.output  # adoption covers
    # only rows the parent model holds
    batch = cli("process")
    assert sorted(batch["request_ids"]) == sorted(pending + late) and not batch["rejected"], batch
    assert batch["gate"] == "passed"
    cli("promote")
    ledger = Ledger(Workspace.from_env().ledger_url)
    for rid in pending + late:
        assert ledger.get(rid).status == "done", ledger.get(rid).reason
    excluded = {row[0]: row[1] for row in repo.exclusions(repo.version("v3")).rows}
    assert excluded[first] == str(pending[0]) and excluded[second] == str(late[0])
    for rid, name in ((pending[1], s0), (late[1], s1)):
        assert all(excluded[sid] == str(rid) for sid in owned[name])

