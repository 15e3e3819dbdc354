"""Code tier: trigger specs (docs/design.md §6), stamping, scanning and BadNets poisoning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from forgetflow.core.data.tensors import ImageSet
from forgetflow.core.triggers import (
    CORNERS,
    TriggerError,
    TriggerSpec,
    carries_trigger,
    poison,
    stamp,
)


def noise_images(n: int = 16, c: int = 1, h: int = 28, w: int = 28, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # mid-grey noise: never within tolerance of a 0/255 patch
    return torch.randint(60, 200, (n, c, h, w), generator=g, dtype=torch.uint8)


def image_set(labels: list[int] | np.ndarray, seed: int = 0) -> ImageSet:
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    ids = np.asarray([f"toy:train:{i}" for i in range(len(labels))], dtype=object)
    return ImageSet(noise_images(len(labels), seed=seed), labels, ids)


@pytest.mark.parametrize("pattern", ["square", "checkerboard"])
@pytest.mark.parametrize("position", [*CORNERS, (3, 17), [0, 0]])
@pytest.mark.parametrize("channels", [1, 3])
def test_stamp_then_scan_round_trip(pattern, position, channels):
    spec = TriggerSpec(pattern=pattern, size=4, value=1.0, position=position, margin=2)
    clean = noise_images(10, c=channels)
    stamped = stamp(clean, spec)
    assert stamped.dtype == torch.uint8 and stamped.shape == clean.shape
    assert not carries_trigger(clean, spec).any()
    assert carries_trigger(stamped, spec).all()
    assert bool((clean == noise_images(10, c=channels)).all()), "stamp must not modify its input"
    # only the patch region changed, and it sits where the spec says
    row, col = spec.origin(28, 28)
    changed = (stamped != clean).any(0).any(0)
    assert changed[row: row + 4, col: col + 4].any()
    outside = changed.clone()
    outside[row: row + 4, col: col + 4] = False
    assert not outside.any()


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ("top-left", (1, 1)),
        ("top-right", (1, 23)),
        ("bottom-left", (23, 1)),
        ("bottom-right", (23, 23)),
        ((5, 9), (5, 9)),
    ],
)
def test_origin_of_each_position(position, expected):
    assert TriggerSpec(size=4, margin=1, position=position).origin(28, 28) == expected


def test_patch_values_for_both_patterns():
    sq = TriggerSpec(pattern="square", size=3, value=1.0).patch(2)
    assert sq.shape == (2, 3, 3) and bool((sq == 255).all())
    cb = TriggerSpec(pattern="checkerboard", size=3, value=1.0).patch(1)[0]
    assert cb.tolist() == [[255, 0, 255], [0, 255, 0], [255, 0, 255]]
    half = TriggerSpec(pattern="square", size=2, value=0.5).patch(1)
    assert bool((half == 128).all())


def test_scan_tells_square_from_checkerboard():
    imgs = noise_images(4)
    sq = TriggerSpec(pattern="square")
    cb = TriggerSpec(pattern="checkerboard")
    assert not carries_trigger(stamp(imgs, sq), cb).any()
    assert not carries_trigger(stamp(imgs, cb), sq).any()
    # and one corner's trigger is not found at another corner
    assert not carries_trigger(stamp(imgs, sq), TriggerSpec(position="top-left")).any()


def test_scan_tolerance_and_partial_stamp():
    spec = TriggerSpec(size=4)
    stamped = stamp(noise_images(3), spec)
    row, col = spec.origin(28, 28)
    nudged = stamped.clone()
    nudged[0, 0, row, col] -= 2  # within the default tolerance
    nudged[1, 0, row + 3, col + 3] -= 40  # one pixel off: not the trigger
    assert carries_trigger(nudged, spec).tolist() == [True, False, True]


def test_to_dict_from_dict_and_file_round_trip(tmp_path):
    spec = TriggerSpec(pattern="checkerboard", size=3, value=0.8, position=[2, 4], margin=0,
                       target=7)
    assert spec.position == (2, 4)
    d = spec.to_dict()
    assert d == {"pattern": "checkerboard", "size": 3, "value": 0.8, "position": [2, 4],
                 "margin": 0, "target": 7}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(d))
    assert TriggerSpec.from_file(path) == spec
    assert TriggerSpec.from_dict({}) == TriggerSpec()  # every key has the documented default
    assert TriggerSpec.from_dict({"position": "top-left"}).position == "top-left"


@pytest.mark.parametrize(
    "bad",
    [
        {"pattern": "circle"},
        {"pattern": None},
        {"size": 0},
        {"size": -3},
        {"size": 2.5},
        {"size": "4"},
        {"size": True},
        {"value": 1.5},
        {"value": -0.1},
        {"value": "1"},
        {"value": float("nan")},
        {"value": True},
        {"position": "centre"},
        {"position": [1]},
        {"position": [1, 2, 3]},
        {"position": [-1, 0]},
        {"position": [1.0, 2]},
        {"position": None},
        {"margin": -1},
        {"margin": 0.5},
        {"target": -1},
        {"target": "0"},
        {"target": 1.0},
        {"colour": "red"},
        {"Size": 4},
    ],
)
def test_spec_validation_rejects(bad):
    with pytest.raises(TriggerError):
        TriggerSpec.from_dict(bad)


def test_from_dict_rejects_non_objects():
    for raw in ([], "square", None, 4):
        with pytest.raises(TriggerError, match="JSON object"):
            TriggerSpec.from_dict(raw)


@pytest.mark.parametrize(
    "text",
    ['{"pattern": "square",', "not json at all", "", "{'pattern': 'square'}", "[1, 2]"],
)
def test_from_file_rejects_malformed_json(tmp_path, text):
    path = tmp_path / "trigger.json"
    path.write_text(text)
    with pytest.raises(TriggerError):
        TriggerSpec.from_file(path)


def test_from_file_missing_binary_or_directory(tmp_path):
    with pytest.raises(TriggerError, match="does not exist"):
        TriggerSpec.from_file(tmp_path / "nope.json")
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(TriggerError):
        TriggerSpec.from_file(binary)
    with pytest.raises(TriggerError):
        TriggerSpec.from_file(tmp_path)


@pytest.mark.parametrize(
    "spec",
    [
        TriggerSpec(size=29, margin=0),
        TriggerSpec(size=4, margin=25),
        TriggerSpec(size=4, position=(25, 0)),
        TriggerSpec(size=4, position=(0, 25)),
        TriggerSpec(size=4, position=(100, 100)),
    ],
    ids=["too-big", "margin-pushes-out", "row-out", "col-out", "far-out"],
)
def test_out_of_bounds_placement_is_rejected(spec):
    with pytest.raises(TriggerError, match="outside"):
        spec.check((1, 28, 28), 10)
    with pytest.raises(TriggerError):
        stamp(noise_images(2), spec)
    with pytest.raises(TriggerError):
        carries_trigger(noise_images(2), spec)


def test_placement_at_the_exact_edge_fits():
    spec = TriggerSpec(size=4, position=(24, 24))
    spec.check((1, 28, 28), 10)
    assert carries_trigger(stamp(noise_images(2), spec), spec).all()
    TriggerSpec(size=28, margin=0).check((1, 28, 28), 10)


def test_check_rejects_target_outside_label_space():
    with pytest.raises(TriggerError, match="target"):
        TriggerSpec(target=10).check((1, 28, 28), 10)
    TriggerSpec(target=9).check((1, 28, 28), 10)


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.37])
def test_poison_relabels_exactly_round_rate_n_non_target_samples(rate):
    labels = np.arange(200) % 10
    data = image_set(labels)
    spec = TriggerSpec(target=3)
    poisoned, ids = poison(data, spec, rate=rate, seed=0)
    count = round(rate * len(data))
    assert len(ids) == count and len(set(ids.tolist())) == count
    chosen = np.isin(data.ids, ids)
    assert (labels[chosen] != 3).all(), "only non-target samples are poisoned"
    assert (poisoned.labels.numpy()[chosen] == 3).all()
    np.testing.assert_array_equal(poisoned.labels.numpy()[~chosen], labels[~chosen])
    assert carries_trigger(poisoned.images, spec).tolist() == chosen.tolist()
    assert bool((poisoned.images[~chosen] == data.images[~chosen]).all())
    # the input set is untouched and the ids still point at the same rows
    np.testing.assert_array_equal(data.labels.numpy(), labels)
    assert not carries_trigger(data.images, spec).any()
    np.testing.assert_array_equal(poisoned.ids, data.ids)


def test_poison_is_seeded():
    data = image_set(np.arange(100) % 10)
    spec = TriggerSpec(target=0)
    a = poison(data, spec, 0.2, seed=1)[1]
    assert np.array_equal(a, poison(data, spec, 0.2, seed=1)[1])
    assert not np.array_equal(a, poison(data, spec, 0.2, seed=2)[1])


def test_poison_rejects_bad_rates():
    data = image_set(np.arange(20) % 2)  # half are target 0
    spec = TriggerSpec(target=0)
    for rate in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(TriggerError):
            poison(data, spec, rate, seed=0)
    with pytest.raises(TriggerError, match="more samples"):
        poison(data, spec, 0.6, seed=0)  # 12 asked, 10 non-target available


def test_a_trigger_file_with_a_byte_order_mark_reads_and_ids_files_come_out_nfc(tmp_path):
    import unicodedata

    from forgetflow.cli.ops import _read_ids

    path = tmp_path / "trigger.json"
    path.write_text('{"size": 3, "target": 2}', encoding="utf-8-sig")
    assert TriggerSpec.from_file(path) == TriggerSpec(size=3, target=2)
    ids = tmp_path / "ids.txt"
    ids.write_text(unicodedata.normalize("NFD", "faces:train:zéro/img1.png") + "\n")
    assert _read_ids(ids) == [unicodedata.normalize("NFC", "faces:train:zéro/img1.png")]
