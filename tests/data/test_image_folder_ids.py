"""Data tier: users' image folders: decoding, ids that survive any name and a re-scan,
subjects from subjects.csv, and the errors a malformed folder gets."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from imagefolders import CLASSES, add_image, write_folder
from PIL import Image

from forgetflow.core.data.folder import list_folder, load_image_folder
from forgetflow.core.data.images import fingerprint
from forgetflow.core.data.manifest import build_manifest, parse_sample_id
from forgetflow.core.data.sources import DataSourceError, load_source
from forgetflow.core.data.tensors import materialize


@pytest.fixture
def folder(tmp_path):
    return write_folder(tmp_path / "faces,2024 é", per_class=10, test_per_class=4)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [16, 24])
def test_any_image_becomes_channels_by_size(folder, channels, size):
    raw = load_image_folder(folder, channels, size)
    assert raw.classes == tuple(sorted(CLASSES))
    assert raw.train.images.shape == (30, channels, size, size)
    assert raw.test.images.shape == (12, channels, size, size)
    assert raw.train.images.dtype == np.uint8
    # colour survives (grayscale files: their luma in every channel)
    keys = raw.train.key_list()
    for cls in raw.classes:
        colour = np.asarray(CLASSES[cls], dtype=float)
        luma = colour @ [0.299, 0.587, 0.114]
        for name, expected in (("img001.jpg", colour), ("img003.png", [luma] * 3)):
            pixel = raw.train.images[keys.index(f"{cls}/{name}")].mean(axis=(1, 2))
            want = expected if channels == 3 else [np.asarray(expected) @ [0.299, 0.587,
                                                                           0.114]]
            np.testing.assert_allclose(pixel, want, atol=12)


def test_ids_are_paths_that_survive_commas_spaces_quotes_and_accents(folder):
    raw = load_image_folder(folder)
    manifest = build_manifest(raw, seed=0, third_party_fraction=0.3)
    assert raw.name == "faces-2024-é"
    odd = [i for i in manifest.ids if "," in i and " " in i and "'" in i and "ñ" in i]
    assert len(odd) == 3 * (2 + 1)  # names k=0,5 in train and k=0 in test, per class
    for sid in manifest.ids:
        dataset, split, key = parse_sample_id(sid)
        assert dataset == raw.name
        assert (folder / split / key).is_file()
    bundle = materialize(raw, manifest)
    for part in (bundle.train, bundle.third_party, bundle.test):
        for k, sid in enumerate(part.ids):
            _, split, key = parse_sample_id(sid)
            source = raw.train if split == "train" else raw.test
            row = source.key_list().index(key)
            assert torch_equal(part.images[k], source.images[row])


def torch_equal(a, b) -> bool:
    return bool((a.numpy() == np.asarray(b)).all())


def test_a_rescan_after_adding_and_removing_images_moves_no_other_row(folder):
    before = build_manifest(load_image_folder(folder), seed=3, third_party_fraction=0.3)
    add_image(folder, "train", "cat", "aaa new, one.png")
    victim = sorted((folder / "train" / "owl é").iterdir())[4]
    victim.unlink()
    after = build_manifest(load_image_folder(folder), seed=3, third_party_fraction=0.3)
    old = dict(zip(before.ids, zip(before.labels, before.split, strict=True), strict=True))
    new = dict(zip(after.ids, zip(after.labels, after.split, strict=True), strict=True))
    assert set(new) - set(old) == {f"{after.ids[0].split(':')[0]}:train:cat/aaa new, one.png"}
    assert set(old) - set(new) == {f"{before.ids[0].split(':')[0]}:train:owl é/{victim.name}"}
    assert all(new[i] == old[i] for i in set(new) & set(old))


def test_fingerprint_changes_with_content_not_with_nothing(folder):
    first = fingerprint(list_folder(folder), 3, 32)
    assert fingerprint(list_folder(folder), 3, 32) == first
    assert fingerprint(list_folder(folder), 1, 32) != first
    add_image(folder, "test", "cat", "late.png")
    assert fingerprint(list_folder(folder), 3, 32) != first


def write_subjects(folder, rows) -> None:
    with open(folder / "subjects.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "subject"])
        writer.writerows(rows)


def test_subjects_csv_names_each_images_subject(folder):
    cats = sorted(p.relative_to(folder).as_posix() for p in (folder / "train" / "cat").iterdir())
    owls = sorted(p.relative_to(folder).as_posix() for p in (folder / "test" / "owl é").iterdir())
    write_subjects(folder, [(p, "alice, the 1st") for p in cats[:4]] + [(owls[0], "bob")])
    raw = load_image_folder(folder)
    manifest = build_manifest(raw, seed=0, third_party_fraction=0.3)
    alice = manifest.ids[manifest.subject == "alice, the 1st"]
    assert sorted(f"train/{parse_sample_id(i)[2]}" for i in alice) == cats[:4]
    assert [f"test/{parse_sample_id(i)[2]}" for i in manifest.ids[manifest.subject == "bob"]] \
        == owls[:1]
    assert (manifest.subject == "").sum() == len(manifest) - 5  # unlisted: no subject


def test_subjects_csv_written_on_windows_is_read(folder):
    (folder / "subjects.csv").write_text("path,subject\r\ntrain\\cat\\img001.jpg,alice\r\n")
    assert load_image_folder(folder).subjects["train/cat/img001.jpg"] == "alice"


def test_subjects_csv_lines_naming_no_image_are_reported(folder):
    cats = sorted(p.relative_to(folder).as_posix() for p in (folder / "train" / "cat").iterdir())
    write_subjects(folder, [(cats[0], "alice"), ("train/cat/deleted.png", "alice"),
                            ("test/cat/typo.jpg", "bob")])
    raw = load_image_folder(folder)
    assert raw.subjects_unmatched == ("test/cat/typo.jpg", "train/cat/deleted.png")
    assert raw.subjects[cats[0]] == "alice"


@pytest.mark.parametrize("text, message", [
    ("file,owner\ntrain/cat/x.png,a\n", "header path,subject"),
    ("path,subject\ntrain/cat/x.png\n", "line 2"),
    ("path,subject\ntrain/cat/x.png,a\ntrain/cat/x.png,b\n", "two subjects"),
    ("path,subject\ncat/img001.jpg,a\n", "line 2: the path must start with train/ or test/"),
    ("path,subject\ntrain/cat/x.png,a\ntest/dog/y.png,b\n", "names none of the images"),
    ("path,subject\ntrain/cat/img001.jpg,tab\there\n", "line 2: a subject is at most 200"),
    ("path,subject\n", "has a header but no path,subject line"),
    ("path,subject\r\n\r\n", "has a header but no path,subject line"),
    ("path,subject\ntrain/cat/img001.jpg," + "a" * 201 + "\n", "line 2: a subject is at most"),
])
def test_malformed_subjects_csv_is_a_clear_error(folder, text, message):
    (folder / "subjects.csv").write_text(text)
    with pytest.raises(DataSourceError, match=message):
        load_image_folder(folder)


def test_malformed_folders_are_clear_errors(tmp_path, folder):
    (folder / "train" / "cat" / ".DS_Store").write_bytes(b"\0\1junk")  # hidden: not a row
    assert len(load_image_folder(folder).train.labels) == 30
    (folder / "train" / "cat" / "notes.txt").write_text("not an image")
    with pytest.raises(DataSourceError, match="notes.txt"):
        load_image_folder(folder)
    (folder / "train" / "cat" / "notes.txt").unlink()
    Image.new("RGB", (9, 9)).save(folder / "train" / "loose.png")
    with pytest.raises(DataSourceError, match="directly under train/"):
        load_image_folder(folder)
    (folder / "train" / "loose.png").unlink()
    shutil.copytree(folder / "test" / "cat", folder / "test" / "zebra")
    with pytest.raises(DataSourceError, match="zebra"):
        load_image_folder(folder)
    empty = tmp_path / "empty"
    (empty / "train" / "a").mkdir(parents=True)
    (empty / "test").mkdir()
    with pytest.raises(DataSourceError, match="no class folders"):
        load_source(f"folder:{empty}")
    with pytest.raises(DataSourceError, match="train/ and test/"):
        load_source(f"folder:{tmp_path / 'nowhere'}")


def test_too_few_images_for_the_splits_is_a_clear_error(tmp_path):
    tiny = write_folder(tmp_path / "tiny", per_class=1, test_per_class=1)
    with pytest.raises(ValueError, match="at least 2"):
        build_manifest(load_image_folder(tiny), third_party_fraction=0.1)


def test_a_folder_with_one_class_is_refused_when_the_manifest_is_built(tmp_path):
    """Training would give a one-output model and the first batch crash in its metrics,
    after writing a data version."""
    single = write_folder(tmp_path / "single", per_class=20, test_per_class=4)
    for name in sorted(CLASSES)[1:]:
        shutil.rmtree(single / "train" / name)
        shutil.rmtree(single / "test" / name)
    with pytest.raises(ValueError, match="1 class with training images: a classifier needs"):
        build_manifest(load_image_folder(single), third_party_fraction=0.1)


def test_cifar10_pickles_are_refused_and_the_binary_version_is_read(tmp_path):
    py = tmp_path / "py" / "cifar-10-batches-py"
    py.mkdir(parents=True)
    (py / "data_batch_1").write_bytes(b"cos\nsystem\n(S'echo planted'\ntR.")
    with pytest.raises(DataSourceError, match="pickle"):
        load_source("cifar10", tmp_path / "py")
    binary = tmp_path / "bin" / "cifar-10-batches-bin"
    binary.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in [*((f"data_batch_{i}.bin", 3) for i in range(1, 6)), ("test_batch.bin", 2)]:
        records = rng.integers(0, 256, (n, 3073), dtype=np.uint8)
        records[:, 0] = rng.integers(0, 10, n)
        (binary / name).write_bytes(records.tobytes())
    raw = load_source("cifar10", tmp_path / "bin")
    assert raw.train.images.shape == (15, 3, 32, 32) and raw.test.images.shape == (2, 3, 32, 32)
    (binary / "test_batch.bin").write_bytes(b"\0" * 100)
    with pytest.raises(DataSourceError, match="not a CIFAR-10 binary batch"):
        load_source("cifar10", tmp_path / "bin")


def test_each_image_is_decoded_once_per_change(folder, tmp_path, monkeypatch):
    """The workspace cache: a second open decodes nothing, a re-scan after one added image
    decodes that image only, and a version's pixels are read back after the folder changed."""
    from forgetflow.adapters import imagestore
    from forgetflow.adapters.workspace import Workspace
    from forgetflow.core.data import images

    calls = []
    real = images.decode_image
    monkeypatch.setattr(images, "decode_image", lambda *a: calls.append(a[3]) or real(*a))
    ws, spec = Workspace(tmp_path / "ws"), imagestore.SourceSpec(f"folder:{folder}", None, 3, 16)
    first, fp = imagestore.open_source(ws, spec)
    assert len(calls) == 42
    imagestore.open_source(ws, spec)
    assert len(calls) == 42
    digest = imagestore.pixels_sha256(ws, fp)
    add_image(folder, "train", "cat", "new one, é.png")
    second, fp2 = imagestore.open_source(ws, spec)
    assert fp2 != fp and len(calls) == 43 and calls[-1].endswith("new one, é.png")
    assert len(second.train.labels) == len(first.train.labels) + 1
    # the first state is still readable by its fingerprint; without its cache it is refused
    assert imagestore.open_source(ws, spec, fp, digest)[1] == fp
    imagestore.prune_cache(ws, {fp2})
    with pytest.raises(DataSourceError, match="changed since this data version"):
        imagestore.open_source(ws, spec, fp, digest)


def test_sixteen_bit_grayscale_is_scaled_not_clipped_and_junk_is_named(tmp_path):
    import io

    from forgetflow.core.data.images import decode_image

    ramp = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)  # 0 .. 63000 of 65535
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, "PNG")
    out = decode_image(buf.getvalue(), 1, 8, "train/x/deep.png")[0]
    assert out[0, 0] == 0 and out.max() == 245 and len(np.unique(out)) > 32  # was 0/255 only
    with pytest.raises(DataSourceError, match="Thumbs.db is not a readable image: not an "
                       "image format") as err:
        decode_image(b"\0junk", 1, 8, "train/x/Thumbs.db")
    assert "BytesIO" not in str(err.value)


def test_linked_class_folders_and_dangling_links_are_named_not_skipped(tmp_path, folder):
    import os

    outside = tmp_path / "elsewhere"
    shutil.copytree(folder / "train" / "cat", outside)
    os.symlink(outside, folder / "train" / "lynx")
    with pytest.raises(DataSourceError, match="train/lynx is a symbolic link to a folder"):
        load_image_folder(folder)
    (folder / "train" / "lynx").unlink()
    os.symlink(tmp_path / "gone.png", folder / "train" / "cat" / "ghost.png")
    with pytest.raises(DataSourceError, match="ghost.png is a symbolic link to nothing"):
        load_image_folder(folder)
