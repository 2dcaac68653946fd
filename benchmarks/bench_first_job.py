"""The first job after the daemon starts, with the default model preloaded (config.json "preload") and without.

    python benchmarks/bench_first_job.py [--rounds 5] [--mp 1] [--settle 3]

Each round starts a fresh daemon per variant (alternating, so drift hits both alike), waits until it answers
plus --settle seconds (a user opens GIMP, then runs the filter), and times the first and the second 1 MP job
from upload to result downloaded, following them as the plug-in does (long-poll). Prints the medians and the
first job's extra time over the second. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_pipeline import prepare_dirs, start_daemon, test_image, wait_like_the_plugin  # noqa: E402


def job_seconds(client, image) -> float:
    height, width = image.shape[:2]
    started = time.perf_counter()
    response = client.post("/v1/jobs", params={"width": width, "height": height, "format": "rgb8"},
                           content=image.tobytes(), headers={"Content-Type": "application/octet-stream"})
    response.raise_for_status()
    job = wait_like_the_plugin(client, response.json()["id"])
    assert job["state"] == "done", job
    client.get(f"/v1/jobs/{job['id']}/layers/0").raise_for_status()
    return time.perf_counter() - started


def one_round(preload: bool, image, settle: float) -> tuple[float, float]:
    import httpx

    with tempfile.TemporaryDirectory(prefix="bench-first-job-") as tmp:
        env = prepare_dirs(Path(tmp))
        Path(env["GIMP_COLORIZE_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)
        (Path(env["GIMP_COLORIZE_CONFIG_DIR"]) / "config.json").write_text(json.dumps({"preload": preload}))
        process, url, token = start_daemon(env)
        try:
            time.sleep(settle)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
                return job_seconds(client, image), job_seconds(client, image)
        finally:
            process.terminate()
            process.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mp", type=float, default=1.0)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds between 'daemon answers' and the job")
    args = parser.parse_args()
    side = int((args.mp * 1e6) ** 0.5)
    image = test_image(side, side)
    load_before = os.getloadavg()
    times = {True: [], False: []}
    for _ in range(args.rounds):
        for preload in (False, True):
            times[preload].append(one_round(preload, image, args.settle))
    load = max(load_before[0], os.getloadavg()[0])
    print(f"{args.mp:g} MP jobs on a fresh daemon, median of {args.rounds} rounds; load average up to {load:.1f}"
          f"{' (under load)' if load > 0.5 else ''}")
    print(f"{'daemon':28}{'first job s':>12}{'second job s':>14}{'first - second':>16}")
    for preload in (False, True):
        first = statistics.median(f for f, _ in times[preload])
        second = statistics.median(s for _, s in times[preload])
        extra = statistics.median(f - s for f, s in times[preload])
        print(f"{'preload on' if preload else 'preload off':28}{first:12.3f}{second:14.3f}{1000 * extra:13.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
