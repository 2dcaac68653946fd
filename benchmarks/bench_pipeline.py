"""Time every stage of the colorize pipeline at 1 MP and 12 MP, in-process and through a real daemon.

    python benchmarks/bench_pipeline.py [--runs 5] [--sizes 1,12] [--stand-in]

Prints one table (median seconds of several runs per stage) and the memory of a job, and checks the
targets of issue 2 on 2 CPU cores: all non-inference overhead through the daemon <= 150 ms at 1 MP and
<= 1.5 s at 12 MP; peak memory of a 12 MP job <= 10x the input's bytes.

The model is the shipped default full model (what users run). --stand-in uses a random model built on the
fly instead (about 1.07 GFLOP = 0.53 GMAC at its 256 x 256 working size, chroma out at 64 x 64; needs the
`onnx` package, dev extra), for checkouts that ship none.
The daemon is measured warm, as the plug-in meets it: the model is loaded and one small job has run before
the memory baseline is taken, so "above idle" is the job's own memory. A job is followed the way the
plug-in follows it: one status request, then long-polls GET /v1/jobs/{id}?wait=5&since=VERSION.
The input is an RGB 8-bit image with gray content, as GIMP hands over most black-and-white photos.
This is a benchmark, not a test: timings on a shared machine are noisy; the load average is printed.
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
sys.path.insert(0, str(REPO))

SIZES = {1: (1000, 1000), 12: (4000, 3000)}  # megapixels -> (width, height)
TARGET_OVERHEAD_S = {1: 0.150, 12: 1.5}
TARGET_MEMORY_FACTOR = 10


# -- the ~1 GFLOP model


def build_bench_model(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from gimp_colorize import contract

    rng = np.random.default_rng(0)
    nodes, inits = [], []
    layers = [(1, 32, 3, 2), (32, 64, 3, 2), (64, 64, 3, 1), (64, 64, 3, 1), (64, 64, 3, 1)]  # (in, out, k, stride)

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    x = "lightness"
    nodes.append(helper.make_node("Sub", [x, const("fifty", 50.0)], ["centred"]))
    nodes.append(helper.make_node("Div", ["centred", const("fifty_d", 50.0)], ["x0"]))
    x = "x0"
    for i, (cin, cout, k, stride) in enumerate(layers):
        weight = rng.normal(0, np.sqrt(2 / (cin * k * k)), (cout, cin, k, k))
        nodes.append(
            helper.make_node(
                "Conv",
                [x, const(f"w{i}", weight), const(f"b{i}", np.zeros(cout))],
                [f"c{i}"],
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[k // 2] * 4,
            )
        )
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        x = f"r{i}"
    nodes.append(helper.make_node("Conv", [x, const("w_out", rng.normal(0, 0.05, (2, 64, 1, 1)))], ["ab_raw"]))
    nodes.append(helper.make_node("Tanh", ["ab_raw"], ["ab_unit"]))
    nodes.append(helper.make_node("Mul", ["ab_unit", const("ab_scale", 40.0)], ["chroma"]))
    graph = helper.make_graph(
        nodes,
        "bench",
        [helper.make_tensor_value_info("lightness", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("chroma", TensorProto.FLOAT, ["N", 2, "h", "w"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(
        model,
        {
            contract.CONTRACT: contract.CONTRACT_VERSION,
            contract.NAME: "bench-1gflop",
            contract.TASK: "full",
            contract.VERSION: "0.0.1",
            contract.COLOUR_SPACE: "lab",
            contract.INPUT: "lightness",
            contract.WORKING_SIZE: "256",
            contract.RESIZE: "square",
            contract.SIZE_MULTIPLE: "32",
            contract.OUTPUT: "chroma",
            contract.OUTPUT_KIND: "ab",
            contract.DESCRIPTION: "random 1 GFLOP benchmark model",
            contract.LICENCE: "GPL-3.0-or-later",
            contract.PROVENANCE: "benchmarks/bench_pipeline.py",
        },
    )
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def prepare_dirs(root: Path, stand_in: bool = False) -> dict[str, str]:
    """Private config/state/user-model dirs; the shipped models stay, unless the random stand-in replaces them."""
    from tests.support.onnx_builders import write_manifest

    env = {
        "GIMP_COLORIZE_CONFIG_DIR": str(root / "config"),
        "GIMP_COLORIZE_STATE_DIR": str(root / "state"),
        "GIMP_COLORIZE_MODELS_DIR": str(root / "models"),
    }
    if stand_in:
        env["GIMP_COLORIZE_SHIPPED_MODELS_DIR"] = str(root / "shipped")
        (root / "shipped").mkdir(parents=True, exist_ok=True)
        build_bench_model(root / "models" / "bench-1gflop.onnx")
        write_manifest(root / "models", [{"file": "bench-1gflop.onnx", "default_for": ["full"]}])
    return env


# -- inputs


def test_image(width: int, height: int) -> np.ndarray:
    """A smooth gray 'photo' with some texture, as (H, W, 3) uint8 with equal channels."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    smooth = 0.5 + 0.3 * np.sin(x / (width / 7)) * np.cos(y / (height / 5))
    noise = np.random.default_rng(1).normal(0, 0.03, (height, width)).astype(np.float32)
    gray = (np.clip(smooth + noise, 0, 1) * 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1)


def median_time(function, runs: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(runs):
        started = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), value


# -- in-process stages


def in_process_stages(image: np.ndarray, runs: int) -> dict[str, float]:
    from gimp_colorize import imageio
    from gimp_colorize.config import load_settings
    from gimp_colorize.daemon import build_engine
    from gimp_colorize.engine import ColorizeOptions

    engine = build_engine(load_settings(), "cpu")
    engine.colorize(image[:64, :64], ColorizeOptions())  # load the model outside the timings
    png = imageio.encode_png(image)
    height, width = image.shape[:2]
    rows = {}
    rows["decode PNG upload"], _ = median_time(lambda: imageio.decode_file(png, 1 << 40), runs)
    raw = bytearray(image.tobytes())
    rows["decode raw upload"], _ = median_time(lambda: imageio.decode_raw(raw, width, height, "rgb8"), runs)
    stage_runs = []
    for _ in range(runs):
        started = time.perf_counter()
        result = engine.colorize(image, ColorizeOptions())
        stage_runs.append({**result.timings, "engine total": time.perf_counter() - started})
    for stage in stage_runs[0]:
        rows[f"engine: {stage}"] = statistics.median(run[stage] for run in stage_runs)
    pixels = result.layers[0].pixels
    rows["encode PNG result"], _ = median_time(lambda: imageio.encode_png(pixels), runs)
    rows["encode raw result"], _ = median_time(lambda: bytes(imageio.encode_raw(pixels)), runs)
    return rows


# -- through the daemon


def start_daemon(env: dict[str, str]) -> tuple[subprocess.Popen, str, str]:
    from tests.support.daemon_harness import free_port, wait_healthy

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gimp_colorize", "serve", "--port", str(port), "--device", "cpu"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, 120)
    token = (Path(env["GIMP_COLORIZE_CONFIG_DIR"]) / "token").read_text().strip()
    return process, url, token


def daemon_round_trip(client, image: np.ndarray) -> dict[str, float]:
    height, width = image.shape[:2]
    body = image.tobytes()
    started = time.perf_counter()
    response = client.post(
        "/v1/jobs",
        params={"width": width, "height": height, "format": "rgb8"},
        content=body,
        headers={"Content-Type": "application/octet-stream"},
    )
    response.raise_for_status()
    uploaded = time.perf_counter()
    job = wait_like_the_plugin(client, response.json()["id"])
    finished = time.perf_counter()
    assert job["state"] == "done", job
    pixels = client.get(f"/v1/jobs/{job['id']}/layers/0").content
    downloaded = time.perf_counter()
    assert len(pixels) == width * height * 3
    inference = job["timings"].get("inference", 0.0)
    return {
        "HTTP upload (raw)": uploaded - started,
        "HTTP job wait": finished - uploaded,
        "HTTP download (raw)": downloaded - finished,
        "daemon: inference": inference,
        "daemon: round trip": downloaded - started,
        "daemon: non-inference overhead": downloaded - started - inference,
    }


LONG_POLL_S = 5  # plugin/common/gimp_colorize_client.py LONG_POLL_S


def wait_like_the_plugin(client, job_id: str) -> dict:
    """One plain status request, then long-polls that the daemon answers as soon as the job changes."""
    job = client.get(f"/v1/jobs/{job_id}").json()
    while job["state"] not in ("done", "failed", "cancelled"):
        job = client.get(f"/v1/jobs/{job_id}", params={"wait": LONG_POLL_S, "since": job["version"]}).json()
    return job


def warm_up(client, image: np.ndarray) -> None:
    """A small job, so that the model is loaded (the daemon preloads it anyway) and onnxruntime has run once."""
    small = np.ascontiguousarray(image[:64, :64])
    response = client.post("/v1/jobs", params={"width": 64, "height": 64, "format": "rgb8"}, content=small.tobytes(),
                           headers={"Content-Type": "application/octet-stream"})
    response.raise_for_status()
    assert wait_like_the_plugin(client, response.json()["id"])["state"] == "done"


def daemon_stages(client, image: np.ndarray, runs: int) -> dict[str, float]:
    samples = [daemon_round_trip(client, image) for _ in range(runs)]
    return {key: statistics.median(sample[key] for sample in samples) for key in samples[0]}


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    """Reset VmHWM (Linux >= 4.0) so the next peak belongs to the next size alone."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


# -- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per size (12 MP uses max(3, runs // 2))")
    parser.add_argument("--sizes", default="1,12", help="megapixel sizes to run, from: 1, 12")
    parser.add_argument("--stand-in", action="store_true",
                        help="time a random ~1 GFLOP model built on the fly instead of the shipped default model")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    import httpx

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-colorize-") as tmp:
        env = prepare_dirs(Path(tmp), args.stand_in)
        os.environ.update(env)
        process, url, token = start_daemon(env)
        columns, memory = {}, {}
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600) as client:
                model = model_name(client)
                for size in sizes:
                    image = test_image(*SIZES[size])
                    runs = args.runs if size == 1 else max(3, args.runs // 2)
                    rows = in_process_stages(image, runs)
                    warm_up(client, image)
                    reset_peak(process.pid)
                    baseline = memory_kib(process.pid, "VmRSS")
                    rows.update(daemon_stages(client, image, runs))
                    memory[size] = (baseline, memory_kib(process.pid, "VmHWM"), image.nbytes)
                    columns[size] = rows
                    print(f"... {size} MP done", file=sys.stderr)
        finally:
            process.terminate()
            process.wait(30)
    load = max(load_before[0], os.getloadavg()[0])
    print(f"model {model}; {os.cpu_count()} CPUs; load average up to {load:.1f}"
          f"{' (taken under load)' if load > 0.5 else ''}")
    print_report(columns, memory, sizes)
    return 0


def model_name(client) -> str:
    models = client.get("/v1/models").json()["models"]
    return next((m["name"] for m in models if m["task"] == "full" and m["default"]), "none")


def print_report(columns: dict, memory: dict, sizes: list[int]) -> None:
    names = list(dict.fromkeys(name for size in sizes for name in columns[size]))
    print(f"{'stage (median seconds)':36}" + "".join(f"{f'{s} MP':>12}" for s in sizes))
    for name in names:
        print(f"{name:36}" + "".join(f"{columns[s].get(name, float('nan')):12.3f}" for s in sizes))
    print()
    for size in sizes:
        overhead = columns[size]["daemon: non-inference overhead"]
        verdict = "ok" if overhead <= TARGET_OVERHEAD_S[size] else "MISSED"
        print(
            f"{size} MP: non-inference overhead through the daemon {overhead * 1000:.0f} ms "
            f"(target <= {TARGET_OVERHEAD_S[size] * 1000:.0f} ms): {verdict}"
        )
    for size in sizes:
        baseline, peak, input_bytes = memory[size]
        factor = (peak - baseline) * 1024 / input_bytes
        verdict = (
            ""
            if size != 12
            else f" (target <= {TARGET_MEMORY_FACTOR}x at 12 MP): "
            + ("ok" if factor <= TARGET_MEMORY_FACTOR else "MISSED")
        )
        print(
            f"{size} MP: warm daemon's peak RSS {peak / 1024:.0f} MiB during the jobs, "
            f"{(peak - baseline) / 1024:.0f} MiB "
            f"above its idle {baseline / 1024:.0f} MiB = {factor:.1f}x the {input_bytes / 2**20:.0f} MiB input{verdict}"
        )


if __name__ == "__main__":
    sys.exit(main())
