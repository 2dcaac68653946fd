"""Instance mode timings on 2 CPU threads: the detector alone, and the whole pipeline beside full mode.

    python benchmarks/bench_instance.py [--runs 15] [--threads 2] [--skip-pipeline]

1. Detector latency (target <= 40 ms per image): the shipped detector (detector-ssd-mnv2) on four photos that
   every CI machine has (scikit-image's astronaut, coffee, motorcycle, chelsea) as instance mode feeds them
   (gray, 300 x 300): the model run alone, and detect() from a 1 MP photo (resize included).
2. The whole instance pipeline at 1 MP with K = 8 instances (eight user boxes, so that K does not depend on
   what the detector finds; the detector runs as well, with boxes=both), next to full mode with the fusion
   model's own full-image branch exported as a full model when one is named (--full-model), else the shipped
   default full model (target: instance <= 3x full). Needs the shipped instance and fusion models.

Median seconds of --runs runs after a warm-up (the pipeline's two modes alternate run by run, so that a change in
the machine's load hits both alike). A benchmark, not a test: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DETECTOR_TARGET_MS = 40.0
INSTANCE_TARGET_RATIO = 3.0


def median_seconds(function, runs: int) -> float:
    function()  # warm-up: session creation, first-run allocations
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def one_megapixel(rgb: np.ndarray) -> np.ndarray:
    """The photo's gray version resized to about 1 MP (1155 x 866 for 4:3), as a black-and-white input."""
    from PIL import Image

    from export.detector_export import gray_of

    height, width = rgb.shape[:2]
    scale = (1e6 / (height * width)) ** 0.5
    return np.asarray(Image.fromarray(gray_of(rgb)).resize((round(width * scale), round(height * scale)), Image.LANCZOS))


def detector_rows(registry, runs: int, threads: int) -> list[tuple[str, float, float]]:
    from export.detector_export import check_photos, gray_of, square_rgb
    from gimp_colorize import detector
    from gimp_colorize.sessions import ModelSession
    from gimp_colorize.source import SourceImage

    info = registry.default_for("detector")
    session = ModelSession(info, ["CPUExecutionProvider"], threads=threads)
    rows = []
    for name, rgb in check_photos().items():
        fed = square_rgb(np.repeat(gray_of(rgb)[..., None], 3, axis=2))[None]
        model_s = median_seconds(lambda: detector.run_detector(session, info, fed), runs)
        source = SourceImage(one_megapixel(rgb))
        detect_s = median_seconds(lambda: detector.detect(session, info, source, 0.5), runs)
        rows.append((name, 1000 * model_s, 1000 * detect_s))
    return rows


def print_detector_table(rows, threads: int) -> None:
    print(f"detector-ssd-mnv2 on {threads} threads (median ms; target <= {DETECTOR_TARGET_MS:.0f} ms per image)")
    print("| photo | model run (300 x 300) | detect() from 1 MP |")
    print("| --- | ---: | ---: |")
    for name, model_ms, detect_ms in rows:
        print(f"| {name} | {model_ms:.1f} | {detect_ms:.1f} |")
    worst = max(row[2] for row in rows)
    print(f"worst detect(): {worst:.1f} ms -> {'meets' if worst <= DETECTOR_TARGET_MS else 'MISSES'} the target")


def pipeline_rows(registry, runs: int, threads: int, full_model: str | None) -> dict[str, dict[str, float]]:
    from export.detector_export import check_photos
    from gimp_colorize.engine import ColorizeOptions, Engine
    from gimp_colorize.options import InstanceOptions

    engine = Engine(registry, providers=["CPUExecutionProvider"], threads=threads)
    image = one_megapixel(check_photos()["astronaut"])
    height, width = image.shape
    boxes = tuple((x, y, width // 5, height // 4) for x in (0, width // 4, width // 2, 3 * width // 4)
                  for y in (0, height // 2))  # eight boxes of a fifth x a quarter of the image
    runs_by_mode = {
        "full": ColorizeOptions(mode="full", model=full_model),
        "instance (K = 8)": ColorizeOptions(mode="instance", instance=InstanceOptions(
            boxes="both", user_boxes=boxes, max_instances=8)),
    }
    for options in runs_by_mode.values():
        engine.colorize(image, options)  # warm-up: sessions, first-run allocations
    timings = {label: [] for label in runs_by_mode}
    details = {}
    for _ in range(runs):  # the modes alternate, so a change in the machine's load hits both alike
        for label, options in runs_by_mode.items():
            started = time.perf_counter()
            result = engine.colorize(image, options)
            timings[label].append({**result.timings, "total": time.perf_counter() - started})
            details[label] = result.details
    table = {label: {stage: statistics.median(t[stage] for t in rows) for stage in rows[0]}
             for label, rows in timings.items()}
    table["instance (K = 8)"]["instances"] = len(details["instance (K = 8)"]["instances"])
    return table


def print_pipeline_table(table: dict, threads: int, size: str) -> None:
    stages = sorted({stage for row in table.values() for stage in row if stage not in ("total", "instances")})
    print(f"\nwhole pipeline at {size} on {threads} threads (median s; target: instance <= "
          f"{INSTANCE_TARGET_RATIO:.0f}x full)")
    print("| mode | " + " | ".join(stages) + " | total |")
    print("| --- |" + " ---: |" * (len(stages) + 1))
    for label, row in table.items():
        print(f"| {label} | " + " | ".join(f"{row.get(s, 0.0):.3f}" for s in stages) + f" | {row['total']:.3f} |")
    full, instance = table["full"]["total"], table["instance (K = 8)"]["total"]
    ratio = instance / full
    print(f"instance / full = {ratio:.2f}x -> {'meets' if ratio <= INSTANCE_TARGET_RATIO else 'MISSES'} the target "
          f"({table['instance (K = 8)']['instances']:.0f} instances)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-pipeline", action="store_true", help="only the detector latency")
    parser.add_argument("--full-model", help="the full model to compare with (e.g. the fusion's own full branch)")
    parser.add_argument("--models", type=Path, help="an extra models folder (user folder) for the pipeline")
    args = parser.parse_args()
    from gimp_colorize.registry import Registry

    registry = Registry(user_dir=args.models)
    print_detector_table(detector_rows(registry, args.runs, args.threads), args.threads)
    if not args.skip_pipeline:
        table = pipeline_rows(registry, args.runs, args.threads, args.full_model)
        print_pipeline_table(table, args.threads, "1 MP")
    return 0


if __name__ == "__main__":
    sys.exit(main())
