"""onnxruntime thread settings for the shipped model: intra-op threads x spinning, idle and with a core taken.

    python benchmarks/bench_threads.py [--runs 15] [--mp 4] [--model NAME] [--conditions as-is,one-core-busy]

One "job" is what the daemon does: a model run at the working size (256 x 192 for a 4:3 photo; the model
card's 256 x 256 square is timed too), then the recombination of an MP-megapixel image on
recombine.PIXEL_THREADS numpy threads, during which onnxruntime's threads may still spin. Every variant
runs in turn, repetition after repetition (interleaved), under each condition:
  as-is          whatever else the machine runs now (the load average is printed; on an idle machine: idle)
  one-core-busy  plus one busy-looping process at normal priority, as when another program uses one core
Prints the median model run, the median recombination right after it, their sum (the job), and the CPU
seconds the process used per job (spinning shows up there). The CPU time of one 256 x 256 run on 1 thread
(spinning makes no difference there) is what that run takes on an idle core: on a loaded machine it is the
better estimate of idle speed than the wall time. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import multiprocessing
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
from gimp_colorize import recombine as recombine_module  # noqa: E402

VARIANTS = {  # name -> (intra-op threads, spinning)
    "1 thread, spinning": (1, True),
    "1 thread, no spinning": (1, False),
    "2 threads, spinning": (2, True),
    "2 threads, no spinning": (2, False),
}


def busy_loop(stop) -> None:
    while not stop.is_set():
        for _ in range(100_000):
            pass


def load_model(name: str | None):
    from gimp_colorize.registry import Registry

    registry = Registry()
    return registry.get(name) if name else registry.default_for("full")


def sessions_for(info) -> dict:
    from gimp_colorize.sessions import CPU, ModelSession

    return {name: ModelSession(info, [CPU], threads=threads, spinning=spinning)
            for name, (threads, spinning) in VARIANTS.items()}


def job_inputs(info, megapixels: float):
    from gimp_colorize.inference import neutral_feeds
    from gimp_colorize.source import SourceImage

    side = (megapixels * 1e6 / 12) ** 0.5
    source = SourceImage(test_image(int(4 * side), int(3 * side)))
    model_input = source.working_lightness(info)
    feeds = {info.input_name: model_input}
    roles = neutral_feeds(info, model_input, np.random.default_rng(0))
    feeds.update({info.optional_inputs[role]: value for role, value in roles.items()})
    square = np.full((1, 1, 256, 256), 50.0, np.float32)
    square_feeds = {info.input_name: square}
    roles = neutral_feeds(info, square, np.random.default_rng(0))
    square_feeds.update({info.optional_inputs[role]: value for role, value in roles.items()})
    return source, feeds, square_feeds


def one_job(session, info, source, feeds) -> tuple[float, float, float]:
    from gimp_colorize.inference import decode_chroma
    from gimp_colorize.recombine import recombine

    cpu, started = time.process_time(), time.perf_counter()
    output = session.run(feeds)
    inferred = time.perf_counter()
    chroma = decode_chroma(info, output, None)[0]
    recombine(source, chroma, info.colour_space)
    finished = time.perf_counter()
    return inferred - started, finished - inferred, time.process_time() - cpu


def measure(sessions: dict, info, source, feeds, square_feeds, runs: int) -> dict:
    samples = {name: {"model": [], "square": [], "square_cpu": [], "recombine": [], "job": [], "cpu": []}
               for name in sessions}
    for session in sessions.values():  # warm-up: first runs allocate
        session.run(feeds)
        session.run(square_feeds)
    for _ in range(runs):
        for name, session in sessions.items():
            model, after, cpu = one_job(session, info, source, feeds)
            started, cpu_started = time.perf_counter(), time.process_time()
            session.run(square_feeds)
            square, square_cpu = time.perf_counter() - started, time.process_time() - cpu_started
            time.sleep(0.05)  # let spinning threads settle before the next variant
            for key, value in (("model", model), ("square", square), ("square_cpu", square_cpu), ("recombine", after),
                               ("job", model + after), ("cpu", cpu)):
                samples[name][key].append(value)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="interleaved repetitions per variant and condition")
    parser.add_argument("--mp", type=float, default=4.0, help="megapixels of the image recombined after each run")
    parser.add_argument("--model", help="model name (default: the installed default full model)")
    parser.add_argument("--conditions", default="as-is,one-core-busy")
    args = parser.parse_args()
    info = load_model(args.model)
    sessions = sessions_for(info)
    source, feeds, square_feeds = job_inputs(info, args.mp)
    working = "x".join(str(side) for side in feeds[info.input_name].shape[2:][::-1])
    tables = []
    for condition in args.conditions.split(","):
        stop = multiprocessing.Event()
        busy = condition == "one-core-busy"
        hogs = [multiprocessing.Process(target=busy_loop, args=(stop,), daemon=True)] if busy else []
        for hog in hogs:
            hog.start()
        try:
            time.sleep(0.5 if hogs else 0)
            load = os.getloadavg()[0]
            tables.append((condition, load, measure(sessions, info, source, feeds, square_feeds, args.runs)))
        finally:
            stop.set()
            for hog in hogs:
                hog.join(5)
        print(f"... {condition} done", file=sys.stderr)
    import onnxruntime

    print(f"model {info.name}, onnxruntime {onnxruntime.__version__}, {os.cpu_count()} CPUs; median of {args.runs} "
          f"interleaved runs; a job = model run at {working} + recombination of {source.width}x{source.height} "
          f"on {recombine_module.PIXEL_THREADS} numpy threads")
    for condition, load, samples in tables:
        print(f"\n{condition} (load average {load:.1f}{', under load' if load > 0.5 else ''})")
        print(f"{'variant':26}{'256x256 ms':>11}{'(CPU ms)':>10}{'model ms':>10}{'recombine ms':>14}{'job ms':>9}"
              f"{'CPU ms/job':>12}")
        for name, sample in samples.items():
            ms = {key: 1000 * statistics.median(values) for key, values in sample.items()}
            print(f"{name:26}{ms['square']:11.1f}{ms['square_cpu']:10.1f}{ms['model']:10.1f}{ms['recombine']:14.1f}"
                  f"{ms['job']:9.1f}{ms['cpu']:12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
