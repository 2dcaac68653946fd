"""`gimp-colorize colorize` end to end, one process per call: this checkout against another one, side by side.

    python benchmarks/bench_cli.py [--runs 5] [--sizes 0,12,24] [--against DIR]

Size 0 is a 64 x 64 image (the fixed start-up: imports, model load, one tiny job); 12 and 24 are
megapixel 8-bit gray PNG photos (gray texture with grain), colorized with the shipped default model.
--against DIR names another source tree's `backend` folder (e.g. an older commit unpacked with
`git archive COMMIT backend | tar -x -C DIR`): both trees run on this virtual environment, in turn,
repetition after repetition (interleaved), and the table shows both medians and their ratio. Each run
also reports the peak memory of the process (ru_maxrss). Prints the load average before and after.
This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SIZES = {0: (64, 64), 12: (4000, 3000), 24: (6000, 4000)}


def gray_photo(width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    smooth = 0.5 + 0.3 * np.sin(x / (width / 7)) * np.cos(y / (height / 5))
    noise = np.random.default_rng(1).normal(0, 0.03, (height, width)).astype(np.float32)
    return (np.clip(smooth + noise, 0, 1) * 255).astype(np.uint8)


def run_cli(backend: Path, image: Path, outdir: Path, env: dict) -> float:
    """Wall seconds of one `python -m gimp_colorize colorize IMAGE -o OUTDIR`."""
    started = time.perf_counter()
    process = subprocess.run([sys.executable, "-m", "gimp_colorize", "colorize", str(image), "-o", str(outdir)],
                             env={**env, "PYTHONPATH": str(backend)}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{backend}: colorize failed: {process.stderr.decode()[-500:]}")
    return wall


def peak_rss_mib(backend: Path, image: Path, outdir: Path, env: dict) -> float:
    """Peak RSS of one run, measured in a wrapper process so that earlier (bigger) runs do not mask it."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "gimp_colorize", "colorize", str(image),
                          "-o", str(outdir)], env={**env, "PYTHONPATH": str(backend)}, capture_output=True,
                         text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs per tree and size")
    parser.add_argument("--sizes", default="0,12,24", help="from: 0 (64 x 64), 12, 24 megapixels")
    parser.add_argument("--against", type=Path, help="another tree's backend folder to compare with")
    args = parser.parse_args()
    from PIL import Image

    trees = {"this tree": REPO / "backend"}
    if args.against:
        trees = {f"against ({args.against})": args.against.resolve(), **trees}
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIMP_COLORIZE_")}
        env.update({"GIMP_COLORIZE_CONFIG_DIR": str(root / "config"), "GIMP_COLORIZE_STATE_DIR": str(root / "state"),
                    "GIMP_COLORIZE_MODELS_DIR": str(root / "models")})
        for size in (int(s) for s in args.sizes.split(",")):
            image = root / f"photo-{size}.png"
            Image.fromarray(gray_photo(*SIZES[size])).save(image, compress_level=1)
            for name, backend in trees.items():
                run_cli(backend, image, root / "out", env)  # warm the file cache
                results[(size, name)] = {"wall": [], "rss": peak_rss_mib(backend, image, root / "out", env)}
            for _ in range(args.runs):
                for name, backend in trees.items():
                    results[(size, name)]["wall"].append(run_cli(backend, image, root / "out", env))
            print(f"... {size} done", file=sys.stderr)
    load_after = os.getloadavg()
    print(f"gimp-colorize colorize, one process per call, median of {args.runs} interleaved runs; {os.cpu_count()} "
          f"CPUs; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
          f"{' (under load)' if max(load_before[0], load_after[0]) > 0.5 else ''}")
    print(f"{'input':14}{'tree':52}{'wall s':>9}{'peak RSS MiB':>14}{'ratio':>8}")
    for (size, name), entry in results.items():
        wall = statistics.median(entry["wall"])
        first = statistics.median(results[(size, next(iter(trees)))]["wall"])
        label = "64 x 64" if size == 0 else f"{size} MP gray"
        print(f"{label:14}{name:52}{wall:9.3f}{entry['rss']:14.0f}{first / wall:7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
