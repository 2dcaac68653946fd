"""The PNG writer: Pillow (the writer before) against imageio.encode_png's filter and thread choices, side by side.

    python benchmarks/bench_png.py [--runs 5] [--sizes 1,12,24] [--no-memory]

For each size, a colorized-looking RGB 8-bit image (gray texture with noise, smooth chroma) and its 16-bit
and gray versions are encoded by every variant in turn, repetition after repetition (interleaved, so drift
on a shared machine hits all alike). Prints the median wall and CPU seconds, the ratio to Pillow, the file
size, and (in a fresh process per variant, 12 MP RGB 8-bit) the peak memory above the image itself. Every
variant's output is decoded again and compared with the input, so only lossless variants are timed.
The load average is printed before and after: on a shared machine say which numbers were taken under load.
This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "backend"))

from gimp_colorize import imageio  # noqa: E402

SIZES = {1: (1000, 1000), 12: (4000, 3000), 24: (6000, 4000)}  # megapixels -> (width, height)


def colorized_image(width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 like a result layer: photo-like gray texture with grain, plus smooth, slowly varying chroma."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    gray = 0.5 + 0.3 * np.sin(x / (width / 7)) * np.cos(y / (height / 5))
    gray += np.random.default_rng(1).normal(0, 0.03, (height, width)).astype(np.float32)
    tint = np.stack([0.08 * np.sin(x / 300), 0.02 * np.cos((x + y) / 500), -0.08 * np.cos(y / 200)], axis=-1)
    return (np.clip(gray[..., None] + tint, 0, 1) * 255 + 0.5).astype(np.uint8)


def pillow_png(pixels: np.ndarray) -> bytes:
    """The writer before: Pillow at level 1 for 8-bit (it cannot write 16-bit colour; then it is not timed)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=imageio.PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def old_png16(pixels: np.ndarray) -> bytes:
    """The 16-bit writer before (one zlib stream of the whole image, filter None, after a full-size copy)."""
    import struct

    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    rows = pixels.astype(">u2").reshape(height, width * channels).view(np.uint8)
    scanlines = np.zeros((height, rows.shape[1] + 1), np.uint8)
    scanlines[:, 1:] = rows

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 16, {1: 0, 2: 4, 3: 2, 4: 6}[channels], 0, 0, 0)
    compressed = zlib.compress(scanlines.tobytes(), imageio.PNG_COMPRESS_LEVEL)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", compressed) + chunk(b"IEND", b"")


def ours(png_filter: int, threads: int):
    def encode(pixels: np.ndarray) -> bytes:
        previous = imageio.PNG_FILTER
        imageio.PNG_FILTER = png_filter
        try:
            return imageio.encode_png(pixels, threads=threads)
        finally:
            imageio.PNG_FILTER = previous

    return encode


BEFORE = {"Pillow level 1 (before)": pillow_png, "16-bit writer (before)": old_png16}
VARIANTS = {
    **BEFORE,
    "direct, filter None, 1 thread": ours(imageio.PNG_FILTER_NONE, 1),
    "direct, filter None, 2 threads": ours(imageio.PNG_FILTER_NONE, 2),
    "direct, filter Up, 1 thread": ours(imageio.PNG_FILTER_UP, 1),
    "direct, filter Up, 2 threads": ours(imageio.PNG_FILTER_UP, 2),
}


def decoded(data: bytes, like: np.ndarray) -> np.ndarray:
    """Decode a PNG back to an array: Pillow for 8-bit and gray; zlib + unfiltering for 16-bit colour."""
    if like.dtype == np.uint8 or like.ndim == 2:
        return imageio.decode_file(data, 1 << 40)
    chunks, offset, idat = [], 8, []
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            idat.append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length
    height, width = like.shape[:2]
    rows = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(height, -1)
    samples = rows[:, 1:].copy()
    for row in range(height):  # undo filter Up (2) row by row; None (0) needs nothing
        if rows[row, 0] == 2 and row > 0:
            samples[row] += samples[row - 1]
        elif rows[row, 0] not in (0, 2):
            raise ValueError(f"unexpected filter {rows[row, 0]}")
    return samples.view(">u2").astype(np.uint16).reshape(like.shape)


def time_variants(images: dict, runs: int) -> dict:
    results = {}
    for image_name, pixels in images.items():
        for name, encode in VARIANTS.items():
            if encode in (pillow_png, old_png16) and (encode is pillow_png) != (pixels.dtype == np.uint8):
                continue
            data = encode(pixels)
            if not np.array_equal(decoded(data, pixels), pixels):
                raise SystemExit(f"{name} is not lossless on {image_name}")
            results[(image_name, name)] = {"wall": [], "cpu": [], "bytes": len(data)}
    for _ in range(runs):
        for (image_name, name), entry in results.items():
            pixels = images[image_name]
            wall, cpu = time.perf_counter(), time.process_time()
            VARIANTS[name](pixels)
            entry["wall"].append(time.perf_counter() - wall)
            entry["cpu"].append(time.process_time() - cpu)
    return results


def peak_memory_mib(name: str, megapixels: int) -> float:
    """Peak RSS above the image, for one encode in a fresh process."""
    out = subprocess.run([sys.executable, __file__, "--child", name, "--sizes", str(megapixels)],
                         capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def child(name: str, megapixels: int) -> None:
    pixels = colorized_image(*SIZES[megapixels])
    before = _vm("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    VARIANTS[name](pixels)
    print((_vm("VmHWM") - before) / 1024)


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="interleaved repetitions of every variant")
    parser.add_argument("--sizes", default="1,12,24", help="megapixel sizes, from: 1, 12, 24")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak memory column")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.child:
        child(args.child, sizes[0])
        return 0
    load_before = os.getloadavg()
    rows = []
    for size in sizes:
        rgb8 = colorized_image(*SIZES[size])
        images = {f"{size} MP RGB 8-bit": rgb8, f"{size} MP gray 8-bit": np.ascontiguousarray(rgb8[..., 1]),
                  f"{size} MP RGB 16-bit": rgb8.astype(np.uint16) * 257}
        for (image_name, name), entry in time_variants(images, args.runs).items():
            rows.append((image_name, name, entry))
        print(f"... {size} MP done", file=sys.stderr)
    memory = {}
    if not args.no_memory and 12 in SIZES and Path("/proc/self/clear_refs").exists():
        memory = {name: peak_memory_mib(name, 12) for name in VARIANTS if VARIANTS[name] is not old_png16}
    load_after = os.getloadavg()
    print_table(rows, memory, args.runs, load_before, load_after)
    return 0


def print_table(rows, memory: dict, runs: int, load_before, load_after) -> None:
    print(f"PNG encoding, median of {runs} interleaved runs; {os.cpu_count()} CPUs; load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (above ~0.5 the numbers were taken under load)")
    print(f"{'image':22}{'writer':34}{'wall s':>9}{'CPU s':>9}{'speed-up':>10}{'MB':>8}")
    baseline = {}
    for image_name, name, entry in rows:
        wall = statistics.median(entry["wall"])
        if name in BEFORE:
            baseline[image_name] = wall
        speedup = f"{baseline[image_name] / wall:9.2f}x" if image_name in baseline else f"{'':>10}"
        print(f"{image_name:22}{name:34}{wall:9.3f}{statistics.median(entry['cpu']):9.3f}{speedup}"
              f"{entry['bytes'] / 1e6:8.1f}")
    if memory:
        print("\npeak memory of one 12 MP RGB 8-bit encode above the image (36 MB), fresh process each:")
        for name, mib in memory.items():
            print(f"  {name:34}{mib:8.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
