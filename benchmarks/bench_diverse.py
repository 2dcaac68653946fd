"""Diverse mode timings: N samples in one job against N whole pipelines, at 1 MP on 2 CPU threads.

    python benchmarks/bench_diverse.py [--runs 7] [--threads 2] [--model NAME] [--models FOLDER]

A diverse model runs its encoder and palette prior once per image and only its decoder once per sample, in one
batch (modes/diverse.py); the recombination with the full-resolution lightness runs once per sample. This prints,
for N = 1, 4, 8: the job with N samples, and N single-sample jobs (what N runs of the whole pipeline cost), with
full mode's default model for scale. Median seconds of --runs runs after a warm-up; the rows alternate run by
run, so a change in the machine's load hits them alike. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_instance import one_megapixel  # noqa: E402

SAMPLE_COUNTS = (1, 4, 8)


def timed_rows(engine, image, model: str | None, runs: int) -> dict[str, list[dict[str, float]]]:
    from gimp_colorize.engine import ColorizeOptions

    jobs = {"full mode (1 layer)": [ColorizeOptions(mode="full")]}
    for count in SAMPLE_COUNTS:
        jobs[f"diverse, N = {count}, one job"] = [ColorizeOptions(mode="diverse", model=model, samples=count, seed=0)]
        if count > 1:
            jobs[f"diverse, N = {count}, {count} single jobs"] = [
                ColorizeOptions(mode="diverse", model=model, samples=1, seed=seed) for seed in range(count)]
    for options_list in jobs.values():
        engine.colorize(image, options_list[0])  # warm-up: sessions, first-run allocations
    timings = {label: [] for label in jobs}
    for _ in range(runs):
        for label, options_list in jobs.items():
            stages: dict[str, float] = {}
            started = time.perf_counter()
            for options in options_list:
                for stage, seconds in engine.colorize(image, options).timings.items():
                    stages[stage] = stages.get(stage, 0.0) + seconds
            stages["total"] = time.perf_counter() - started
            timings[label].append(stages)
    return timings


def print_table(timings: dict, threads: int, size: str) -> None:
    stages = sorted({stage for rows in timings.values() for row in rows for stage in row if stage != "total"})
    print(f"diverse mode at {size} on {threads} threads (median s)")
    print("| job | " + " | ".join(stages) + " | total | per layer |")
    print("| --- |" + " ---: |" * (len(stages) + 2))
    medians = {}
    for label, rows in timings.items():
        median = {stage: statistics.median(row.get(stage, 0.0) for row in rows) for stage in stages + ["total"]}
        medians[label] = median["total"]
        layers = 1 if label.startswith("full") else int(label.split("N = ")[1].split(",")[0])
        print(f"| {label} | " + " | ".join(f"{median[s]:.3f}" for s in stages)
              + f" | {median['total']:.3f} | {median['total'] / layers:.3f} |")
    for count in SAMPLE_COUNTS[1:]:
        together, apart = medians[f"diverse, N = {count}, one job"], medians[f"diverse, N = {count}, {count} single jobs"]
        print(f"N = {count}: one job takes {together / apart:.2f}x the time of {count} single jobs "
              f"({together / medians['diverse, N = 1, one job']:.2f}x one sample)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", help="the diverse model (default: the installed default)")
    parser.add_argument("--models", type=Path, help="an extra models folder (user folder)")
    args = parser.parse_args()
    from skimage import data

    from gimp_colorize.engine import Engine
    from gimp_colorize.registry import Registry

    engine = Engine(Registry(user_dir=args.models), providers=["CPUExecutionProvider"], threads=args.threads)
    image = one_megapixel(data.astronaut())
    height, width = image.shape
    print_table(timed_rows(engine, image, args.model, args.runs), args.threads, f"1 MP ({width} x {height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
