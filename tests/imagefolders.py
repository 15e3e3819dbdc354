"""Generated image folders in the layout users bring: train/ and test/ with a folder per class,
mixed PNG/JPEG/WebP, grayscale and RGB, mixed sizes, names with a comma, a space, a quote and
non-ASCII letters. Each class has its own colour, so a model can learn it in a few epochs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = {"cat": (220, 40, 40), "dog, brown": (40, 200, 60), "owl é": (40, 60, 230)}
FORMATS = ("png", "jpg", "webp")


def make_image(rng: np.random.Generator, colour: tuple[int, int, int], k: int) -> Image.Image:
    side = int(rng.integers(12, 48))
    base = np.asarray(colour, dtype=float)[None, None, :]
    noise = rng.normal(0, 25, size=(side, side + int(rng.integers(0, 9)), 3))
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    img = Image.fromarray(pixels, "RGB")
    return img.convert("L") if k % 4 == 3 else img  # every fourth image is grayscale


def write_folder(root: Path, per_class: int = 30, test_per_class: int = 10,
                 seed: int = 0) -> Path:
    """A folder source; file names carry commas, spaces, quotes and non-ASCII letters."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", per_class), ("test", test_per_class)):
        for cls, colour in CLASSES.items():
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                ext = FORMATS[k % len(FORMATS)]
                name = f"img {k:03d},v'1 ñ.{ext}" if k % 5 == 0 else f"img{k:03d}.{ext}"
                make_image(rng, colour, k).save(folder / name)
    return root


def add_image(root: Path, split: str, cls: str, name: str, seed: int = 99) -> Path:
    path = root / split / cls / name
    make_image(np.random.default_rng(seed), CLASSES[cls], 0).save(path)
    return path
