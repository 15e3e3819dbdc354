"""`make bench-folder`: `forgetflow data prepare` on a generated folder of small images
(100,000 by default, BENCH_FOLDER_IMAGES): wall seconds and peak memory of the first prepare
(scan, decode, cache, DVC commit), of an unchanged re-run, of reading the version back, and of
a re-scan after one image was added. Writes bench-results/folder-scale.json and BENCHMARKS.md's
"Image folder at scale" section."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from forgetflow.bench.cli_latency import executable, update_benchmarks_md

OUT = Path("bench-results") / "folder-scale.json"
SECTION = "## Image folder at scale (`make bench-folder`)"
CLASSES = 10
LOAD = ("from forgetflow.adapters.datarepo import DataRepo\n"
        "from forgetflow.adapters.dataversions import load_bundle\n"
        "from forgetflow.adapters.workspace import Workspace\n"
        "repo = DataRepo(Workspace.from_env())\n"
        "bundle, _ = load_bundle(repo, repo.version())\n"
        "print(len(bundle.train), tuple(bundle.train.images.shape))\n")


def generate(root: Path, count: int, seed: int = 0) -> None:
    """`count` images of 12-28 px, PNG and JPEG, 10% in test/, one colour per class."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (CLASSES, 3))
    for i in range(count):
        split = "test" if i % 10 == 9 else "train"
        label = (i // 10) % CLASSES
        folder = root / split / f"class {label:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        side = 12 + i % 17
        pixels = np.clip(colours[label] + rng.normal(0, 30, (side, side, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(
            folder / f"img {i:06d}.{'png' if i % 2 else 'jpg'}")


def timed(args: list[str], env: dict[str, str]) -> dict:
    """Wall seconds and the child's own peak RSS (wait4: not its siblings')."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{err[-2000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "stdout": out.strip()[-300:]}


def markdown(result: dict) -> str:
    rows = "\n".join(f"| {r['step']} | {r['seconds']:.1f} | {r['peak_rss_mib']:.0f} |"
                     for r in result["rows"])
    return (f"{SECTION}\n\n- command: `make bench-folder` ({result['images']:,} images of "
            f"12-28 px, PNG and JPEG, {CLASSES} classes; data.channels 3, data.image_size 32)\n"
            f"- machine: {result['machine']}\n- date: {result['date']}, commit "
            f"{result['commit']}; generating the folder took {result['generate_s']:.0f} s "
            f"(not counted)\n- each step a fresh process; wall seconds and its peak RSS\n\n"
            f"| step | seconds | peak RSS MiB |\n|---|---|---|\n{rows}\n\n"
            f"The decoded cache is {result['cache_mib']:.0f} MiB on disk (one uint8 array per "
            "split file, with each row's stamp); a re-scan decodes only new or changed files.\n")


def main() -> None:
    from forgetflow.bench.report import machine, short_commit

    count = int(os.environ.get("BENCH_FOLDER_IMAGES", "100000"))
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="ff-bench-folder-") as tmp:
        root = Path(tmp) / "images"
        t0 = time.perf_counter()
        generate(root, count)
        generate_s = time.perf_counter() - t0
        params = Path(tmp) / "params.yaml"
        params.write_text(json.dumps({"data": {"source": f"folder:{root}", "channels": 3,
                                               "image_size": 32}}))
        env = {**os.environ, "FORGETFLOW_HOME": str(Path(tmp) / "ws"),
               "FORGETFLOW_PARAMS": str(params), "FORGETFLOW_PROGRESS": "off",
               "PREFECT_HOME": str(Path(tmp) / "prefect"), "MLFLOW_DISABLE_TELEMETRY": "true"}
        for key in ("MLFLOW_TRACKING_URI", "FORGETFLOW_DB_URL", "FORGETFLOW_S3_URL"):
            env.pop(key, None)
        prepare = [executable(), "data", "prepare", "--json"]
        rows = []
        for step, args in (("first prepare (scan, decode, cache, DVC commit)", prepare),
                           ("prepare again, nothing changed", prepare),
                           ("read the version back (load_bundle)",
                            [sys.executable, "-c", LOAD])):
            rows.append({"step": step, **timed(args, env)})
            print(f"{step}: {rows[-1]['seconds']} s", file=sys.stderr)
        cache = Path(tmp) / "ws" / "cache" / "decoded"
        cache_mib = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) / 2**20
        (root / "train" / "class 00" / "added one.png").write_bytes(
            next((root / "train" / "class 00").glob("*.png")).read_bytes())
        rows.append({"step": "prepare after adding one image", **timed(prepare, env)})
    rev = short_commit()
    result = {"command": "make bench-folder", "machine": machine(), "commit": rev,
              "date": f"{started:%Y-%m-%d %H:%M} UTC", "images": count,
              "generate_s": round(generate_s, 1), "cache_mib": round(cache_mib, 1),
              "rows": rows}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    update_benchmarks_md(markdown(result), section=SECTION)
    print(f"wrote {OUT} and BENCHMARKS.md's image-folder section", file=sys.stderr)


if __name__ == "__main__":
    main()
