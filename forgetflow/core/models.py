"""Classifiers that take float32 [N, C, H, W] pixels in [0, 1]; normalization lives inside."""

from __future__ import annotations

import torch
from torch import nn


class Normalize(nn.Module):
    """Per-channel standardization, stored as buffers so a saved model is self-contained."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class SmallCNN(nn.Module):
    """Two strided conv layers and an MLP head: the CPU reference model (~0.1M parameters at
    28x28). Strided convolutions instead of pooling keep activations small, which is what
    costs time on a 2-core CPU."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, 2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, 2, 1), nn.ReLU(inplace=True),
        )
        side = (image_size // 2 + 1) // 2  # conv1 halves (floor), conv2 halves (ceil)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * width * side * side, 64), nn.ReLU(inplace=True),
            nn.Linear(64, num_classes),
        )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def stages(self) -> list[nn.Module]:
        return [self.features, self.head]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 with the CIFAR stem (3x3 conv, no max-pool), for 1 or 3 input channels."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(True)
        )
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)
        )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))

    def stages(self) -> list[nn.Module]:
        """stem, the four two-block stages, head (views: the state-dict keys stay put)."""
        blocks = list(self.layers)
        return [self.stem, *(nn.Sequential(*blocks[i: i + 2]) for i in range(0, 8, 2)), self.head]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class ResNet8(nn.Module):
    """CIFAR-style ResNet-8: a 3x3 stem and three stages of one basic block (widths 16/32/64,
    each stage halving the resolution), global average pooling and one linear layer. The
    head holds < 1% of the ~78k weights, so, unlike the reference CNN, whatever a model
    memorises lives in its convolutions; that is the case `dm` must handle on real networks.
    All three stages stride 2 (28 -> 14 -> 7 -> 4): the stem still sees full resolution, and
    the block convolutions, which cost the time on a small CPU, run at 14x14 and below."""

    def __init__(self, in_channels: int, num_classes: int, widths: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        )
        cins = (widths[0], *widths[:-1])
        self.layers = nn.Sequential(*(BasicBlock(c, w, 2) for c, w in zip(cins, widths,
                                                                           strict=True)))
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], num_classes)
        )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))

    def stages(self) -> list[nn.Module]:
        return [self.stem, *self.layers, self.head]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class Classifier(nn.Module):
    """Normalize then a backbone: the self-contained module every stage passes around."""

    def __init__(self, backbone: nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.backbone = backbone

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Features the head reads; with a frozen extractor they can be computed once."""
        return self.backbone.embed(self.normalize(x))

    @property
    def head(self) -> nn.Module:
        return self.backbone.head

    def stages(self) -> list[nn.Module]:
        """The network as a chain: forward(x) == stages[-1](...stages[0](normalize(x))).
        The last stage is the head; everything before it is the feature extractor, split
        where a method may freeze a prefix and cache its activations (dm's `trainable`)."""
        return self.backbone.stages()

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (the vector the last linear layer reads), for linear probes."""
        h = self.embed(x)
        for layer in list(self.head)[:-1]:
            h = layer(h)
        return h.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(x))


MODEL_NAMES = ("cnn", "resnet8", "resnet18")


def build_model(
    name: str, in_channels: int, num_classes: int, image_size: int,
    mean: list[float], std: list[float],
) -> Classifier:
    """Construct a model by name; the arguments are exactly what a checkpoint's config stores."""
    if name == "cnn":
        backbone: nn.Module = SmallCNN(in_channels, num_classes, image_size)
    elif name == "resnet8":
        backbone = ResNet8(in_channels, num_classes)
    elif name == "resnet18":
        backbone = ResNet18(in_channels, num_classes)
    else:
        raise ValueError(f"unknown model {name!r}; expected one of {MODEL_NAMES}")
    return Classifier(backbone, mean, std)
