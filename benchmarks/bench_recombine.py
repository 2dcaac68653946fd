"""The full-resolution recombination (recombine.py): this tree against another one, side by side, per pixel.

    python benchmarks/bench_recombine.py [--runs 9] [--sizes 1,12] [--against DIR]

The chroma is the shipped default model's output for the benchmark photo (bench_pipeline.test_image),
recombined at full size from 8-bit gray (what GIMP sends for a black-and-white photo, after the RGB-is-gray
check), 16-bit gray and 8-bit colour sources, on 1 thread and on recombine.PIXEL_THREADS threads.
--against DIR names another tree's `backend` folder (e.g. `git archive COMMIT backend | tar -x -C DIR`):
its recombine runs in the same process, in turn with this tree's (interleaved repetitions), and the two
outputs are compared pixel for pixel. "stat" is the share of the time spent on the clipped-pixel
statistic (the same runs with the statistic switched off). Prints wall and CPU nanoseconds per pixel
(medians), and the load average: CPU time is the steadier figure on a loaded machine.
This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "backend"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_pipeline import test_image  # noqa: E402

SIZES = {1: (1000, 1000), 12: (4000, 3000)}


def load_tree(backend: Path, name: str):
    """Another tree's gimp_colorize package, imported under `name` so both can live in one process."""
    package = backend / "gimp_colorize"
    spec = importlib.util.spec_from_file_location(name, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    importlib.import_module(f"{name}.source")
    return importlib.import_module(f"{name}.recombine"), sys.modules[f"{name}.source"]


def model_chroma(image: np.ndarray) -> tuple[np.ndarray, str]:
    from gimp_colorize.inference import decode_chroma, neutral_feeds, run_model
    from gimp_colorize.registry import Registry
    from gimp_colorize.sessions import CPU, ModelSession
    from gimp_colorize.source import SourceImage

    info = Registry().default_for("full")
    model_input = SourceImage(image).working_lightness(info)
    output = run_model(ModelSession(info, [CPU], threads=1), info, model_input,
                       neutral_feeds(info, model_input, np.random.default_rng(0)))
    return decode_chroma(info, output, None)[0], info.colour_space


def sources(size: int) -> dict[str, np.ndarray]:
    rgb_gray = test_image(*SIZES[size])
    gray16 = rgb_gray[..., 0].astype(np.uint16) * 257
    colour = rgb_gray.copy()
    colour[..., 0] = np.clip(colour[..., 0].astype(np.int16) + 12, 0, 255).astype(np.uint8)  # a warm cast
    return {"gray 8-bit (RGB, equal channels)": rgb_gray, "gray 16-bit": gray16, "RGB 8-bit colour": colour}


def statistic_off(recombine_module):
    """Switch the clipped-pixel statistic off in a recombine module (either tree's name for it)."""
    name = "lightness_moved" if hasattr(recombine_module, "lightness_moved") else "_lightness_moved"
    original = getattr(recombine_module, name)
    setattr(recombine_module, name, lambda *args, **kwargs: 0)
    return lambda: setattr(recombine_module, name, original)


def one_run(recombine_module, source_module, image, chroma, space, threads, with_statistic=True):
    recombine_module.PIXEL_THREADS = threads
    restore = None if with_statistic else statistic_off(recombine_module)
    try:
        source = source_module.SourceImage(image)
        wall, cpu = time.perf_counter(), time.process_time()
        out, moved = recombine_module.recombine(source, chroma, space)
        return time.perf_counter() - wall, time.process_time() - cpu, out, moved
    finally:
        if restore:
            restore()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="interleaved repetitions")
    parser.add_argument("--sizes", default="1,12", help="megapixel sizes, from: 1, 12")
    parser.add_argument("--against", type=Path, help="another tree's backend folder to compare with")
    args = parser.parse_args()
    from gimp_colorize import recombine, source

    trees = {"this tree": (recombine, source)}
    if args.against:
        trees = {"against": load_tree(args.against.resolve(), "gimp_colorize_against"), **trees}
    thread_counts = sorted({1, recombine.PIXEL_THREADS})
    load_before = os.getloadavg()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        images = sources(size)
        chroma, space = model_chroma(next(iter(images.values())))
        pixels = SIZES[size][0] * SIZES[size][1]
        for image_name, image in images.items():
            for threads in thread_counts:
                samples = {(tree, stat): [] for tree in trees for stat in (True, False)}
                outputs = {}
                for _ in range(args.runs):
                    for (tree, stat), values in samples.items():
                        wall, cpu, out, moved = one_run(*trees[tree], image, chroma, space, threads, stat)
                        values.append((wall, cpu))
                        if stat:
                            outputs[tree] = (out, moved)
                same = len({out.tobytes() for out, _ in outputs.values()}) == 1
                for tree in trees:
                    wall = statistics.median(w for w, _ in samples[(tree, True)]) / pixels * 1e9
                    cpu = statistics.median(c for _, c in samples[(tree, True)]) / pixels * 1e9
                    cpu_off = statistics.median(c for _, c in samples[(tree, False)]) / pixels * 1e9
                    rows.append((f"{size} MP {image_name}", threads, tree, wall, cpu, 1 - cpu_off / cpu,
                                 outputs[tree][1], same))
        print(f"... {size} MP done", file=sys.stderr)
    load_after = os.getloadavg()
    print(f"recombination, median of {args.runs} interleaved runs; {os.cpu_count()} CPUs; load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after"
          f"{' (under load: trust the CPU column more)' if max(load_before[0], load_after[0]) > 0.5 else ''}")
    print(f"{'source':40}{'threads':>8}  {'tree':11}{'wall ns/px':>11}{'CPU ns/px':>11}{'stat':>7}{'x CPU':>7}"
          f"{'moved':>9}{'  pixels':10}")
    first = {}
    for label, threads, tree, wall, cpu, stat_share, moved, same in rows:
        first.setdefault((label, threads), cpu)
        identical = "identical" if same else "DIFFER"
        print(f"{label:40}{threads:>8}  {tree:11}{wall:11.1f}{cpu:11.1f}{100 * stat_share:6.0f}%"
              f"{first[(label, threads)] / cpu:6.2f}x{moved:9d}  {identical if len(trees) > 1 else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
