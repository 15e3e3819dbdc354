"""Code tier: model builders (docs/design.md §7) and the seeded training loop + checkpoints."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from forgetflow.core.metrics import accuracy, predict_logits
from forgetflow.core.models import MODEL_NAMES, build_model
from forgetflow.core.training import (
    ModelSpec,
    TrainConfig,
    load_checkpoint,
    save_checkpoint,
    spec_for,
    train_model,
)


def stats(c: int) -> tuple[list[float], list[float]]:
    return [0.3] * c, [0.2] * c


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [16, 28, 29, 30, 31, 32])
def test_cnn_forward_shape(channels, size):
    model = build_model("cnn", channels, 7, size, *stats(channels)).eval()
    with torch.no_grad():
        out = model(torch.rand(3, channels, size, size))
    assert out.shape == (3, 7) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [16, 28])
def test_resnet18_forward_shape(channels, size):
    model = build_model("resnet18", channels, 10, size, *stats(channels)).eval()
    with torch.no_grad():
        out = model(torch.rand(2, channels, size, size))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert sum(p.numel() for p in model.parameters()) > 10_000_000  # a real ResNet-18


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [16, 28, 32])
def test_resnet8_forward_shape_and_a_one_layer_head(channels, size):
    model = build_model("resnet8", channels, 10, size, *stats(channels)).eval()
    with torch.no_grad():
        out = model(torch.rand(2, channels, size, size))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    total = sum(p.numel() for p in model.parameters())
    linear = [m for m in model.head.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linear) == 1 and linear[0].in_features == 64
    head = sum(p.numel() for p in model.head.parameters())
    assert head / total < 0.02, "the head must be a small share of the weights"
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) >= 7


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg", 1, 10, 28, *stats(1))
    assert MODEL_NAMES == ("cnn", "resnet8", "resnet18")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_stages_chain_to_the_forward_pass_and_features_feed_the_last_layer(name):
    model = build_model(name, 1, 10, 28, *stats(1)).eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        h = model.normalize(x)
        for stage in model.stages():
            h = stage(h)
        assert torch.allclose(h, model(x), atol=1e-6)
        feats = model.features(x)
        last = list(model.head)[-1]
        assert feats.ndim == 2 and torch.allclose(last(feats), model(x), atol=1e-5)
    assert model.stages()[-1] is model.head


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_normalization_lives_inside_the_module(name):
    mean, std = [0.25, 0.5, 0.75], [0.1, 0.2, 0.4]
    model = build_model(name, 3, 10, 16, mean, std).eval()
    sd = model.state_dict()
    assert torch.allclose(sd["normalize.mean"].flatten(), torch.tensor(mean))
    assert torch.allclose(sd["normalize.std"].flatten(), torch.tensor(std))
    assert "normalize.mean" not in dict(model.named_parameters())  # buffers, not trained
    x = torch.rand(4, 3, 16, 16)
    expected = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(model.normalize(x), expected)
    # a fresh model built with other statistics reproduces the outputs once the state is loaded
    other = build_model(name, 3, 10, 16, [0.0] * 3, [1.0] * 3).eval()
    other.load_state_dict(sd)
    with torch.no_grad():
        assert torch.equal(model(x), other(x))
        model.normalize.mean.fill_(0.9)
        assert not torch.allclose(model(x), other(x)), "outputs must depend on the buffers"


def test_spec_for_reads_channel_statistics(digits_bundle):
    spec = spec_for(digits_bundle, "cnn")
    assert (spec.in_channels, spec.num_classes, spec.image_size) == (1, 10, 16)
    pixels = digits_bundle.train.images.float() / 255.0
    assert spec.mean[0] == pytest.approx(float(pixels.mean()), rel=1e-4)
    assert spec.std[0] == pytest.approx(float(pixels.std()), rel=1e-3)


CFG = TrainConfig(model="cnn", epochs=1, batch_size=64, lr=3e-3, seed=0)


@pytest.fixture(scope="module")
def digits_spec(digits_bundle) -> ModelSpec:
    return spec_for(digits_bundle, "cnn")


@pytest.fixture(scope="module")
def trained(digits_bundle, digits_spec):
    return train_model(digits_bundle.train, digits_spec, CFG, progress=False)


def test_one_epoch_train_is_deterministic_for_a_seed(digits_bundle, digits_spec, trained):
    model_a, stats_a = trained
    model_b, stats_b = train_model(digits_bundle.train, digits_spec, CFG, progress=False)
    sa, sb = model_a.state_dict(), model_b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert stats_a == stats_b
    model_c, _ = train_model(digits_bundle.train, digits_spec, replace(CFG, seed=1),
                             progress=False)
    assert any(not torch.equal(sa[k], v) for k, v in model_c.state_dict().items())


def test_one_epoch_train_learns_something(digits_bundle, trained):
    model, st = trained
    assert set(st) == {"train_loss", "train_acc_running"}
    assert np.isfinite(st["train_loss"]) and 0.0 <= st["train_acc_running"] <= 1.0
    assert not model.training and next(model.parameters()).device.type == "cpu"
    test_acc = accuracy(predict_logits(model, digits_bundle.test.images), digits_bundle.test.labels)
    assert test_acc > 0.5, "one epoch on digits should beat chance (0.1) by far"


def test_checkpoint_round_trip(tmp_path, digits_bundle, digits_spec, trained):
    model, _ = trained
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, model, digits_spec, CFG, extra={"data_version": "v3", "n": 7})
    loaded, spec, cfg, extra = load_checkpoint(path)
    assert spec == digits_spec
    assert cfg == CFG and asdict(cfg)["epochs"] == 1
    assert extra == {"data_version": "v3", "n": 7}
    assert not loaded.training
    images = digits_bundle.test.images
    assert torch.equal(predict_logits(loaded, images), predict_logits(model, images))
    # the buffers (normalization) travelled too
    assert torch.equal(loaded.normalize.mean, model.normalize.mean)
    # extra defaults to an empty dict
    save_checkpoint(tmp_path / "plain.safetensors", model, digits_spec, CFG)
    assert load_checkpoint(tmp_path / "plain.safetensors")[3] == {}


def test_training_rejects_an_empty_set(digits_bundle, digits_spec):
    empty = digits_bundle.train.take(np.asarray([], dtype=np.int64))
    with pytest.raises(ValueError, match="empty"):
        train_model(empty, digits_spec, CFG, progress=False)
