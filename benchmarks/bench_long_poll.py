"""Seeing a job finish: the plug-in's polling backoff against the long-poll, at 1 MP, through a real daemon.

    python benchmarks/bench_long_poll.py [--runs 15] [--mp 1] [--stand-in]

Submits the same raw image again and again; each run waits for the job one way, alternating the two
ways so that drift on a shared machine hits both alike. Prints the median (and the spread) of the time
from "upload accepted" to "done seen", and the long-poll's saving. Polling is the plug-in's loop before
the long-poll existed (20 ms, growing by 1.5x up to 100 ms). This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_pipeline import prepare_dirs, start_daemon, test_image  # noqa: E402


def submit(client, image) -> str:
    height, width = image.shape[:2]
    response = client.post("/v1/jobs", params={"width": width, "height": height, "format": "rgb8"},
                           content=image.tobytes(), headers={"Content-Type": "application/octet-stream"})
    response.raise_for_status()
    return response.json()["id"]


def wait_by_polling(client, job_id: str) -> dict:
    interval = 0.02
    while (job := client.get(f"/v1/jobs/{job_id}").json())["state"] not in ("done", "failed", "cancelled"):
        time.sleep(interval)
        interval = min(interval * 1.5, 0.1)
    return job


def wait_by_long_poll(client, job_id: str) -> dict:
    job = client.get(f"/v1/jobs/{job_id}").json()
    while job["state"] not in ("done", "failed", "cancelled"):
        job = client.get(f"/v1/jobs/{job_id}", params={"wait": 30, "since": job["version"]}).json()
    return job


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per way of waiting")
    parser.add_argument("--mp", type=float, default=1.0, help="image size in megapixels")
    parser.add_argument("--stand-in", action="store_true", help="a random model instead of the shipped default")
    args = parser.parse_args()
    import httpx

    side = int((args.mp * 1e6) ** 0.5)
    image = test_image(side, side)
    waits = {"polling (20 ms x1.5, max 100 ms)": wait_by_polling, "long-poll (wait=30&since=V)": wait_by_long_poll}
    times: dict[str, list[float]] = {name: [] for name in waits}
    with tempfile.TemporaryDirectory(prefix="bench-long-poll-") as tmp:
        env = prepare_dirs(Path(tmp), stand_in=args.stand_in)
        process, url, token = start_daemon(env)
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
                wait_by_polling(client, submit(client, image))  # warm-up: load the model
                for _ in range(args.runs):
                    for name, wait in waits.items():
                        job_id = submit(client, image)
                        started = time.perf_counter()
                        assert wait(client, job_id)["state"] == "done"
                        times[name].append(time.perf_counter() - started)
        finally:
            process.terminate()
            process.wait(30)
    print(f"{args.mp:g} MP, {args.runs} runs each: seconds from upload accepted to done seen")
    print(f"{'way of waiting':36}{'median':>10}{'min':>10}{'max':>10}")
    for name, samples in times.items():
        print(f"{name:36}{statistics.median(samples):10.3f}{min(samples):10.3f}{max(samples):10.3f}")
    poll, long_poll = (statistics.median(samples) for samples in times.values())
    print(f"long-poll saves {1000 * (poll - long_poll):.0f} ms per job (median), {long_poll / poll:.2f}x the time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
