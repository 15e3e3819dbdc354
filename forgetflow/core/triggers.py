"""Backdoor trigger specs: validation, stamping, scanning and BadNets-style poisoning."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from forgetflow.core.data.tensors import ImageSet

CORNERS = ("bottom-right", "top-left", "top-right", "bottom-left")
PATTERNS = ("square", "checkerboard")
KEYS = {"pattern", "size", "value", "position", "margin", "target"}


class TriggerError(ValueError):
    """A trigger spec is malformed or does not fit the images it is applied to."""


@dataclass(frozen=True)
class TriggerSpec:
    """docs/design.md §6: a square patch of `size` pixels at a corner or at [row, col]."""

    pattern: str = "square"
    size: int = 4
    value: float = 1.0
    position: str | tuple[int, int] = "bottom-right"
    margin: int = 1
    target: int = 0

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise TriggerError(f"pattern must be one of {PATTERNS}, got {self.pattern!r}")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 1:
            raise TriggerError(f"size must be a positive integer, got {self.size!r}")
        if (
            not isinstance(self.value, int | float) or isinstance(self.value, bool)
            or not 0.0 <= float(self.value) <= 1.0
        ):
            raise TriggerError(f"value must be a number in [0, 1], got {self.value!r}")
        if not isinstance(self.margin, int) or isinstance(self.margin, bool) or self.margin < 0:
            raise TriggerError(f"margin must be a non-negative integer, got {self.margin!r}")
        if not isinstance(self.target, int) or isinstance(self.target, bool) or self.target < 0:
            raise TriggerError(f"target must be a non-negative integer, got {self.target!r}")
        pos = self.position
        if isinstance(pos, str):
            if pos not in CORNERS:
                raise TriggerError(f"position must be one of {CORNERS} or [row, col], got {pos!r}")
        elif (
            isinstance(pos, list | tuple) and len(pos) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in pos)
        ):
            object.__setattr__(self, "position", (int(pos[0]), int(pos[1])))
        else:
            raise TriggerError(f"position must be a corner name or [row, col] >= 0, got {pos!r}")

    @classmethod
    def from_dict(cls, raw: object) -> TriggerSpec:
        if not isinstance(raw, dict):
            raise TriggerError("a trigger spec must be a JSON object")
        unknown = set(raw) - KEYS
        if unknown:
            raise TriggerError(f"unknown trigger keys: {sorted(unknown)}")
        return cls(**raw)

    @classmethod
    def from_file(cls, path: str | Path) -> TriggerSpec:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8-sig"))  # a BOM is no key
        except FileNotFoundError as exc:
            raise TriggerError(f"trigger file {path} does not exist") from exc
        except OSError as exc:
            raise TriggerError(f"trigger file {path} cannot be read: {exc}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TriggerError(f"trigger file {path} is not valid JSON: {exc}") from exc
        return cls.from_dict(raw)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["position"] = list(self.position) if isinstance(self.position, tuple) else self.position
        return d

    def origin(self, height: int, width: int) -> tuple[int, int]:
        """Top-left corner of the patch for an image size; raises if it does not fit."""
        s, m = self.size, self.margin
        if isinstance(self.position, tuple):
            row, col = self.position
        else:
            row = m if self.position.startswith("top") else height - m - s
            col = m if self.position.endswith("left") else width - m - s
        if row < 0 or col < 0 or row + s > height or col + s > width:
            raise TriggerError(
                f"trigger of size {s} at {self.position} (margin {m}) falls outside "
                f"{height}x{width} images"
            )
        return row, col

    def patch(self, channels: int) -> torch.Tensor:
        """The uint8 patch [C, size, size] that stamping writes."""
        hi = int(round(self.value * 255))
        if self.pattern == "square":
            cells = torch.full((self.size, self.size), hi, dtype=torch.uint8)
        else:
            grid = (torch.arange(self.size)[:, None] + torch.arange(self.size)[None, :]) % 2 == 0
            cells = torch.where(grid, hi, 255 - hi).to(torch.uint8)
        return cells.expand(channels, -1, -1).clone()

    def check(self, image_shape: tuple[int, int, int], num_classes: int) -> None:
        """Fail early when the spec cannot apply to this data."""
        self.origin(image_shape[1], image_shape[2])
        if self.target >= num_classes:
            raise TriggerError(f"target {self.target} outside labels 0..{num_classes - 1}")


def stamp(images: torch.Tensor, spec: TriggerSpec) -> torch.Tensor:
    """Return a copy of uint8 images [N, C, H, W] with the trigger written in."""
    _, c, h, w = images.shape
    row, col = spec.origin(h, w)
    out = images.clone()
    out[:, :, row: row + spec.size, col: col + spec.size] = spec.patch(c)
    return out


def carries_trigger(images: torch.Tensor, spec: TriggerSpec, tolerance: int = 2) -> np.ndarray:
    """Mask of images whose patch region matches the trigger (per pixel within `tolerance`)."""
    _, c, h, w = images.shape
    row, col = spec.origin(h, w)
    region = images[:, :, row: row + spec.size, col: col + spec.size].to(torch.int16)
    diff = (region - spec.patch(c).to(torch.int16)).abs()
    return diff.flatten(1).amax(1).le(tolerance).numpy()


def poison(
    data: ImageSet, spec: TriggerSpec, rate: float, seed: int
) -> tuple[ImageSet, np.ndarray]:
    """BadNets: stamp `rate` of the non-target samples and relabel them to the target."""
    if not 0.0 < rate < 1.0:
        raise TriggerError(f"poison rate must be in (0, 1), got {rate}")
    candidates = np.flatnonzero(data.labels.numpy() != spec.target)
    count = max(1, int(round(rate * len(data))))
    if count > len(candidates):
        raise TriggerError("poison rate asks for more samples than there are non-target ones")
    chosen = np.sort(np.random.default_rng(seed).choice(candidates, count, replace=False))
    images, labels = data.images.clone(), data.labels.clone()
    images[chosen] = stamp(images[chosen], spec)
    labels[chosen] = spec.target
    return data.with_images(images, labels), data.ids[chosen]
