"""dm's rebuild for class requests (docs/method.md §14): when it applies, that it distils the
suffix toward the masked targets, and that BatchNorm ends with the statistics of the rows."""

from __future__ import annotations

import torch
from torch import nn

from forgetflow.core.unlearn.dm_reset import applies, rebuild, settle_batchnorm
from forgetflow.core.unlearn.dm_streams import Pool, Streams


def test_applies_to_class_requests_with_a_frozen_prefix_and_a_feature_stage_only() -> None:
    assert applies("auto", 3, start=3, n_stages=5)  # ResNet-8: last block + head
    assert not applies("auto", 3, start=4, n_stages=5)  # head only (the reference CNN)
    assert not applies("auto", 3, start=0, n_stages=5)  # trainable: all (ladder rung 2)
    assert not applies("auto", None, start=3, n_stages=5)  # samples / backdoor
    assert not applies("off", 3, start=3, n_stages=5)


def _suffix() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def test_settle_batchnorm_sets_the_statistics_of_the_rows() -> None:
    net = _suffix()
    x = torch.randn(300, 4) * 3 + 1
    settle_batchnorm(net, [Pool(x[:150], torch.zeros(150), True),
                           Pool(x[150:], torch.zeros(150), True)], torch.device("cpu"))
    h = net[0](x)
    assert not net.training
    assert torch.allclose(net[1].running_mean, h.mean(0), atol=1e-4)
    assert net[1].momentum == 0.1  # restored


def test_rebuild_fits_the_masked_teacher_and_never_predicts_the_class() -> None:
    torch.manual_seed(0)
    teacher = _suffix().eval()
    x = torch.randn(512, 4)

    def masked(logits: torch.Tensor) -> torch.Tensor:
        logits = logits.clone()
        logits[:, 2] = float("-inf")
        return torch.softmax(logits, 1)

    with torch.no_grad():
        ref = masked(teacher(x))
    empty = Pool(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), True)
    streams = Streams(forget=empty, replay=Pool(x, torch.zeros(512, dtype=torch.long), True),
                      anchor=empty, anchor_ref=torch.zeros(0, 3), anchor_stamped=None)
    student = _suffix()
    rebuild(student, teacher, streams, masked, steps=300, lr=1e-2, batch=64, seed=0,
            device=torch.device("cpu"))
    with torch.no_grad():
        out = student(x)
    assert not student.training
    assert (out.argmax(1) != 2).all()
    agree = (out.argmax(1) == ref.argmax(1)).float().mean()
    assert agree > 0.9, agree


def test_an_empty_pool_encodes_to_an_empty_pool_of_the_right_shape() -> None:
    from forgetflow.core.models import build_model
    from forgetflow.core.unlearn.dm_streams import Encoder
    from forgetflow.core.unlearn.dm_trainable import Split

    model = build_model("resnet8", 1, 4, 16, [0.5], [0.25]).eval()
    encoder = Encoder(Split(model, 3).prefix, torch.device("cpu"))
    pool = encoder.pool(torch.zeros(0, 1, 16, 16, dtype=torch.uint8), torch.zeros(0))
    full = encoder.pool(torch.zeros(2, 1, 16, 16, dtype=torch.uint8), torch.zeros(2))
    assert len(pool) == 0 and pool.x.shape[1:] == full.x.shape[1:]
