"""Users' own images end to end: a generated folder of mixed PNG/JPEG/WebP, grayscale/RGB,
mixed-size images, named with commas, spaces, quotes and non-ASCII letters, goes through every
command (prepare → train → subject, samples, class and backdoor requests → process → promote →
report → receipt verify → a later prepare that keeps the rows out), and the same images behind
an S3 prefix prepare the same rows."""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from imagefolders import CLASSES, add_image, write_folder
from PIL import Image
from typer.testing import CliRunner

from forgetflow.adapters.datarepo import DataRepo
from forgetflow.adapters.workspace import Workspace
from forgetflow.cli.app import app
from forgetflow.core.data.manifest import parse_sample_id
from forgetflow.core.triggers import TriggerSpec, stamp

from .conftest import TINY_PARAMS

runner = CliRunner()


def cli(*args: str, code: int = 0) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if result.stdout.strip() else {}


def folder_params(params_file: Path, source: str) -> None:
    params = {**TINY_PARAMS, "data": {**TINY_PARAMS["data"], "source": source, "channels": 3,
                                      "image_size": 16, "third_party_fraction": 0.25},
              "train": {**TINY_PARAMS["train"], "epochs": 8, "lr": 0.01}}
    params_file.write_text(yaml.safe_dump(params, allow_unicode=True))


TRIGGER = {"pattern": "checkerboard", "size": 4, "value": 1.0, "position": "bottom-right",
           "margin": 1, "target": 0}


def with_stamped(root: Path, count: int = 8) -> Path:
    """Poisoned rows: dog-coloured images carrying the trigger, filed under the target class
    (cat), written at the model's 16x16 as PNG so the patch survives decoding exactly."""
    rng = np.random.default_rng(5)
    pixels = np.clip(rng.normal(CLASSES["dog, brown"], 25, (count, 16, 16, 3)), 0, 255)
    images = stamp(torch.from_numpy(pixels.astype(np.uint8)).permute(0, 3, 1, 2),
                   TriggerSpec.from_dict(TRIGGER))
    for k, image in enumerate(images.permute(0, 2, 3, 1).numpy()):
        Image.fromarray(image).save(root / "train" / "cat" / f"stamped {k}.png")
    return root


def with_subjects(root: Path) -> Path:
    """alice owns six training images (some with odd names), bob two test images; one line
    names an image that is gone."""
    cats = sorted((root / "train" / "cat").iterdir())
    with open(root / "subjects.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "subject"])
        writer.writerows((p.relative_to(root).as_posix(), "alice") for p in cats[:6])
        writer.writerows((p.relative_to(root).as_posix(), "bob")
                         for p in sorted((root / "test" / "cat").iterdir())[:2])
        writer.writerow(["train/cat/deleted since.png", "alice"])  # a stale line: reported
    return root


@pytest.mark.slow
def test_own_folder_through_every_command(prefect_harness: None, params_file: Path,
                                          tmp_path: Path) -> None:
    root = with_stamped(with_subjects(write_folder(tmp_path / "faces,2024 ñ", per_class=40,
                                                   test_per_class=12)))
    folder_params(params_file, f"folder:{root}")
    prepared = cli("data", "prepare")
    assert prepared["data_version"] == "v1" and prepared["subjects"] == "subjects.csv"
    assert prepared["subjects_unmatched"] == 1
    assert prepared["image_shape"] == [3, 16, 16]
    trained = cli("train")
    assert trained["data_version"] == "v1"

    repo = DataRepo(Workspace.from_env())
    m = repo.manifest(repo.version("v1"))
    train = m.split == "train"
    alice = set(m.ids[m.subject == "alice"])
    assert len(alice) == 6 and all(parse_sample_id(i)[2].startswith("cat/") for i in alice)
    odd = [i for i in m.ids[train & (m.labels == 1)] if "'" in i.rsplit("/", 1)[1]]
    plain = [i for i in m.ids[train & (m.labels == 1)] if i not in odd
             and "stamped" not in i][:10]
    samples = odd + plain
    (tmp_path / "ids.txt").write_text("\n".join(samples) + "\n", encoding="utf-8")
    owl = sorted(CLASSES).index("owl é")  # classes are train/'s folders, sorted
    rids = [cli("request", "submit", "--kind", "subject", "--subject", "alice")["id"],
            cli("request", "submit", "--kind", "samples", "--ids-file",
                str(tmp_path / "ids.txt"))["id"],
            cli("request", "submit", "--kind", "class", "--label", "Owl É")["id"]]  # by name
    (tmp_path / "trigger.json").write_text(json.dumps(TRIGGER))
    rids.append(cli("request", "submit", "--kind", "backdoor", "--trigger",
                    str(tmp_path / "trigger.json"))["id"])
    stamped = {i for i in m.ids[train] if "stamped" in i}
    assert stamped

    batch = cli("process")
    assert batch["gate"] == "passed" and sorted(batch["request_ids"]) == sorted(rids)
    assert batch["data_version"] == "v2"
    cli("promote")
    for rid in rids:
        assert cli("request", "show", str(rid))["status"] == "done"
        assert cli("receipt", "verify", str(rid))["verified"] is True
    report = tmp_path / "report.html"
    runner.invoke(app, ["report", "champion", "--out", str(report)])
    assert report.is_file() and "alice" not in report.read_text(encoding="utf-8")

    v2 = repo.manifest(repo.version("v2"))
    gone = set(m.ids) - set(v2.ids)
    named = alice | set(samples) | stamped | set(m.ids[(m.labels == owl) & (m.split != "test")])
    assert named <= gone <= named | set(m.ids[m.labels == owl])
    # the folder still holds every image and gains one: a new version, forgotten rows stay out
    add_image(root, "train", "cat", "zz new, é.png")
    again = cli("data", "prepare")
    assert again["data_version"] == "v3" and again["created"] is True
    v3 = repo.manifest(repo.version("v3"))
    assert not gone & set(v3.ids)
    assert set(v3.ids) - set(v2.ids) == {f"{m.ids[0].split(':')[0]}:train:cat/zz new, é.png"}
    assert cli("data", "prepare")["created"] is False


def upload(folder: Path, client, bucket: str, prefix: str) -> None:
    client.create_bucket(Bucket=bucket)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        client.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(folder).as_posix()}",
                          Body=path.read_bytes())


def test_s3_prefix_prepares_the_same_rows_as_the_folder(s3_server, params_file: Path,
                                                        tmp_path: Path, monkeypatch) -> None:
    root = with_subjects(write_folder(tmp_path / "faces", per_class=8, test_per_class=3))
    folder_params(params_file, f"folder:{root}")
    from_folder = cli("data", "prepare")
    repo = DataRepo(Workspace.from_env())
    a = repo.manifest(repo.version(from_folder["data_version"]))
    bundle_a = load(repo, from_folder["data_version"])

    bucket = f"images-{uuid.uuid4().hex[:8]}"
    upload(root, s3_server.client(), bucket, "teams/faces")
    for key, value in {"AWS_ACCESS_KEY_ID": s3_server.access_key,
                       "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
                       "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_ENDPOINT_URL": s3_server.endpoint}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FORGETFLOW_HOME", str(tmp_path / "ws-s3"))
    folder_params(params_file, f"s3://{bucket}/teams/faces")
    from_s3 = cli("data", "prepare")
    repo_s3 = DataRepo(Workspace.from_env())
    b = repo_s3.manifest(repo_s3.version(from_s3["data_version"]))
    assert a.ids.tolist() == b.ids.tolist() and a.digest() == b.digest()
    bundle_b = load(repo_s3, from_s3["data_version"])
    for split in ("train", "third_party", "test"):
        assert np.array_equal(getattr(bundle_a, split).images, getattr(bundle_b, split).images)
    objects = list((tmp_path / "ws-s3" / "cache" / "s3-objects").iterdir())
    assert len(objects) == len(list(root.rglob("*.*")))  # each object downloaded once
    if s3_server.kind == "moto":  # moto accepts any secret
        return
    # a wrong secret is named as such, and nothing is written
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    monkeypatch.setenv("FORGETFLOW_HOME", str(tmp_path / "ws-wrong"))
    result = runner.invoke(app, ["data", "prepare"])
    assert result.exit_code == 2 and "AWS_SECRET_ACCESS_KEY" in result.stderr
    assert not (tmp_path / "ws-wrong" / "data-registry").exists()


def load(repo: DataRepo, tag: str):
    from forgetflow.adapters.dataversions import load_bundle

    return load_bundle(repo, repo.version(tag))[0]
