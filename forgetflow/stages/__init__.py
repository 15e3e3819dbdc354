"""`dvc repro` entry points (root dvc.yaml): prepare → train → evaluate of the base model.
Each stage reads exactly the params keys dvc.yaml lists and writes under build/."""

from pathlib import Path

BUILD = Path("build")
MANIFEST = BUILD / "manifest.csv"
MODEL = BUILD / "model.safetensors"
