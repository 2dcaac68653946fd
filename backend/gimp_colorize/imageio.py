"""Pixels in and out: raw buffers (the plug-in's format), PNG/JPEG/TIFF files, PNG output, atomic writes.

Decoded images are numpy arrays shaped (H, W) or (H, W, C) with C in 1..4, dtype uint8, uint16 or float32,
ready for Engine.colorize. Known limitation: Pillow reads 16-bit *colour* PNG/TIFF as 8-bit (it has no
48-bit mode); 16-bit grayscale, the usual black-and-white scan, keeps its full depth.

Files come from anyone who can reach the daemon, so only Pillow's PNG, JPEG and TIFF decoders are ever
tried (Pillow would otherwise run any of its ~40 decoders on whatever the bytes look like), the pixel
limit is ours and is checked before any pixel is decoded, and every decoder failure becomes one sentence.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np

from .errors import ImageTooLarge, InvalidImage

# format name -> (channels, little-endian dtype); docs/DESIGN.md "HTTP API v1" lists the same names
RAW_FORMATS: dict[str, tuple[int, np.dtype]] = {}
for _layout, _channels in (("gray", 1), ("graya", 2), ("rgb", 3), ("rgba", 4)):
    for _suffix, _dtype in (("8", "u1"), ("16", "<u2"), ("f32", "<f4")):
        RAW_FORMATS[_layout + _suffix] = (_channels, np.dtype(_dtype))

FILE_CONTENT_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/tiff": "TIFF"}
FILE_FORMATS = ("PNG", "JPEG", "TIFF")  # the only Pillow decoders a file upload reaches
# What an unaccepted file most likely is, to say so instead of "cannot identify image file"
_OTHER_SIGNATURES = (
    (b"GIF87a", "a GIF"), (b"GIF89a", "a GIF"), (b"BM", "a BMP"), (b"8BPS", "a Photoshop (PSD)"),
    (b"%PDF", "a PDF"), (b"\x00\x00\x01\x00", "an ICO"), (b"qoif", "a QOI"), (b"\xff\x0a", "a JPEG XL"),
)
_REPR = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")
# atomic_write's temporaries: ".NAME.<8 hex digits>.part" beside the target
_PART_FILE = re.compile(r"^\..+\.[0-9a-f]{8}\.part$")
STALE_PART_AGE_S = 3600.0  # a temporary this old belongs to no write still in progress
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
PNG_COMPRESS_LEVEL = 1  # level 6 is ~3x slower for ~10% smaller files; local transfers favour speed


def raw_byte_length(width: int, height: int, fmt: str) -> int:
    channels, dtype = raw_format(fmt)
    return width * height * channels * dtype.itemsize


def raw_format(fmt: str) -> tuple[int, np.dtype]:
    try:
        return RAW_FORMATS[fmt]
    except KeyError:
        raise InvalidImage(f"unknown raw format '{fmt}'; use one of {', '.join(RAW_FORMATS)}") from None


def decode_raw(data, width: int, height: int, fmt: str) -> np.ndarray:
    """View `data` (bytes, bytearray, memoryview) as an image without copying when the byte order allows."""
    channels, dtype = raw_format(fmt)
    if width <= 0 or height <= 0:
        raise InvalidImage(f"width and height must be positive, got {width} x {height}")
    expected = raw_byte_length(width, height, fmt)
    if len(data) != expected:
        raise InvalidImage(f"raw {fmt} data for {width} x {height} must be {expected} bytes, got {len(data)}")
    pixels = np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("="), copy=False)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return pixels.reshape(shape)


def raw_format_for(pixels: np.ndarray) -> str:
    """The raw format name of an (H, W, 3) result: rgb8, rgb16 or rgbf32."""
    names = {np.dtype(np.uint8): "rgb8", np.dtype(np.uint16): "rgb16", np.dtype(np.float32): "rgbf32"}
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype not in names:
        raise ValueError(f"expected (H, W, 3) uint8/uint16/float32 pixels, got {pixels.shape} {pixels.dtype}")
    return names[pixels.dtype]


def encode_raw(pixels: np.ndarray) -> memoryview:
    """Little-endian bytes of `pixels` as a memoryview (no copy on little-endian machines)."""
    little = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)
    return memoryview(np.ascontiguousarray(little)).cast("B")


def decode_file(data, max_pixels: int) -> np.ndarray:
    """Decode PNG/JPEG/TIFF bytes, honouring EXIF orientation; the size is checked before pixels are decoded."""
    if len(data) == 0:
        raise InvalidImage("the image file is empty (0 bytes); send a PNG, JPEG or TIFF file")
    image = _open_image(data, max_pixels)
    _check_pixel_count(image.size, max_pixels)
    from PIL import ImageOps

    # Decoders raise all sorts on hostile data (OSError, ValueError, struct.error, IndexError...): any of
    # them means the same thing to the user, and none may escape as an internal error.
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
    except MemoryError:
        raise
    except Exception as exc:
        raise InvalidImage(f"cannot decode the image: the file is truncated or corrupt ({_describe(exc)})") from None
    return _pil_to_array(image)


def _open_image(data, max_pixels: int):
    """Parse the header with one of the accepted decoders only."""
    from PIL import Image

    _use_our_pixel_limit(Image, max_pixels)
    try:
        return Image.open(io.BytesIO(data), formats=FILE_FORMATS)
    except Image.DecompressionBombError:  # only beyond twice Pillow's own limit, which is at least ours
        raise ImageTooLarge(
            f"the image has more than {2 * Image.MAX_IMAGE_PIXELS / 1e6:.1f} megapixels; "
            f"the limit is {max_pixels / 1e6:.1f}"
        ) from None
    except Image.UnidentifiedImageError:
        raise InvalidImage(f"cannot decode the image: {_what_it_is(data)}") from None
    except MemoryError:
        raise
    except Exception as exc:
        raise InvalidImage(f"cannot decode the image: the file is truncated or corrupt ({_describe(exc)})") from None


_pillow_warning_silenced = False


def _use_our_pixel_limit(Image, max_pixels: int) -> None:
    """Let our limit, not Pillow's global one, decide (Pillow's check runs inside Image.open).

    Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that; raising it to at least our limit means
    a legal image is never refused by Pillow, and its warning (our own check follows) is noise in the log.
    """
    global _pillow_warning_silenced
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels
    if not _pillow_warning_silenced:
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        _pillow_warning_silenced = True


def _what_it_is(data) -> str:
    head = bytes(data[:16])
    kind = next((name for magic, name in _OTHER_SIGNATURES if head.startswith(magic)), None)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        kind = "a WebP"
    if kind:
        return f"it is {kind} file; only PNG, JPEG and TIFF are accepted (convert it to PNG first)"
    return "it is not a PNG, JPEG or TIFF file (or it is damaged)"


def _describe(exc: Exception) -> str:
    """Pillow's message without Python object reprs such as <_io.BytesIO object at 0x7f...>."""
    text = _REPR.sub("", str(exc)).strip().rstrip(".")
    return text[:200] or type(exc).__name__


def read_image(path: Path, max_pixels: int) -> np.ndarray:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidImage(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode_file(data, max_pixels)


def _check_pixel_count(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image has {width} x {height} = {width * height / 1e6:.1f} megapixels; "
            f"the limit is {max_pixels / 1e6:.1f}"
        )


def _pil_to_array(image) -> np.ndarray:
    """Map Pillow modes onto the engine's dtypes: 8-bit stays uint8, 16-bit gray uint16, 32-bit float float32."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return np.asarray(image)
    if mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16, copy=False)
    if mode == "I":  # 32-bit integer gray: some TIFFs and older Pillow's 16-bit PNGs
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
    if mode == "F":
        return np.asarray(image, dtype=np.float32)
    if mode in ("1", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "La", "RGBa", "RGBX"):
        has_alpha = mode in ("PA", "La", "RGBa") or "transparency" in image.info
        return np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    raise InvalidImage(f"unsupported image mode '{mode}'")


def encode_png(pixels: np.ndarray, threads: int | None = None) -> bytes:
    """PNG of (H, W) or (H, W, 1..4) pixels: 8-bit for uint8, 16-bit otherwise (float in [0, 1] is scaled to 16 bits).

    Written directly rather than by Pillow, which spends most of its time choosing a filter per row and copying
    RGB to RGBX: every row gets the "Up" filter, and strips of rows are compressed by independent deflate
    streams on `threads` threads (default: recombine.PIXEL_THREADS), joined into the one zlib stream of the
    IDAT chunks (each strip but the last ends on a byte boundary, with a sync flush). One IDAT chunk per strip.
    benchmarks/bench_png.py measured the choice (filter, level, threads) against Pillow.
    """
    from .recombine import for_each_chunk

    channels = 1 if pixels.ndim == 2 else pixels.shape[-1]
    if pixels.ndim not in (2, 3) or channels not in _PNG_COLOUR_TYPES or pixels.size == 0:
        raise ValueError(f"cannot write a PNG of shape {pixels.shape}")
    depth = 8 if pixels.dtype == np.uint8 else 16
    height, width = pixels.shape[:2]
    row_bytes = width * channels * depth // 8
    strips = _png_strips(height, row_bytes)
    compressed = for_each_chunk(lambda rows: _png_strip(pixels, rows, row_bytes, height), strips, threads)
    adler = 1
    for (start, stop), (_, strip_adler, _) in zip(strips, compressed, strict=True):
        adler = adler32_combine(adler, strip_adler, (stop - start) * (row_bytes + 1))
    header = struct.pack(">IIBBBBB", width, height, depth, _PNG_COLOUR_TYPES[channels], 0, 0, 0)
    parts = [_PNG_SIGNATURE, _png_chunk(b"IHDR", header)]
    for number, (data, _, crc) in enumerate(compressed):
        if number == len(compressed) - 1:
            trailer = struct.pack(">I", adler)
            data, crc = data + trailer, zlib.crc32(trailer, crc)
        parts += [struct.pack(">I", len(data)), b"IDAT", data, struct.pack(">I", crc)]
    parts.append(_png_chunk(b"IEND", b""))
    return b"".join(parts)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> gray, gray + alpha, RGB, RGBA
PNG_FILTER_NONE, PNG_FILTER_UP = 0, 2
PNG_FILTER = PNG_FILTER_UP  # each byte minus the byte above: one numpy subtraction; faster and smaller than None
_ZLIB_HEADER = b"\x78\x01"  # deflate, 32 KiB window, "fastest" (level 1); (0x78 * 256 + 0x01) % 31 == 0
PNG_STRIP_BYTES = 1 << 21  # uncompressed bytes per deflate stream: enough strips for the threads to share
_ADLER_BASE = 65521


def _png_strips(height: int, row_bytes: int) -> list[tuple[int, int]]:
    step = max(1, PNG_STRIP_BYTES // (row_bytes + 1))
    return [(start, min(height, start + step)) for start in range(0, height, step)]


def _png_samples(pixels: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows start..stop as (rows, row bytes) uint8 in PNG sample order (16-bit big-endian)."""
    part = pixels[start:stop]
    if part.dtype == np.uint8:
        return np.ascontiguousarray(part).reshape(stop - start, -1)
    if part.dtype != np.uint16:  # float: float16 would overflow at 65535, so scale at least in float32
        part = np.round(np.clip(part.astype(np.promote_types(part.dtype, np.float32), copy=False), 0.0, 1.0) * 65535.0)
    return part.astype(">u2").reshape(stop - start, -1).view(np.uint8)


def _png_strip(pixels: np.ndarray, rows: tuple[int, int], row_bytes: int, height: int) -> tuple[bytes, int, int]:
    """One strip's scanlines (Up filter) deflated: (IDAT data, adler32 of the scanlines, crc32 of b"IDAT" + data).

    The first strip's data starts with the zlib header; the last one's deflate stream is finished (its Adler-32
    trailer, known only when every strip is done, is appended by the caller).
    """
    start, stop = rows
    samples = _png_samples(pixels, max(0, start - 1), stop)  # the row above the strip feeds its first row's filter
    if start > 0:
        above, samples = samples[:1], samples[1:]
    else:
        above = np.zeros((1, row_bytes), np.uint8)  # the PNG filters see zeros above the first row
    scanlines = np.empty((stop - start, row_bytes + 1), np.uint8)
    scanlines[:, 0] = PNG_FILTER
    if PNG_FILTER == PNG_FILTER_UP:
        np.subtract(samples[:1], above, out=scanlines[:1, 1:])  # uint8 arithmetic wraps modulo 256, as PNG wants
        np.subtract(samples[1:], samples[:-1], out=scanlines[1:, 1:])
    else:
        scanlines[:, 1:] = samples
    raw = memoryview(scanlines).cast("B")
    deflate = zlib.compressobj(PNG_COMPRESS_LEVEL, zlib.DEFLATED, -15)  # raw deflate: the zlib wrapper is ours
    data = (_ZLIB_HEADER if start == 0 else b"") + deflate.compress(raw)
    data += deflate.flush(zlib.Z_FINISH if stop == height else zlib.Z_SYNC_FLUSH)
    return data, zlib.adler32(raw), zlib.crc32(data, zlib.crc32(b"IDAT"))


def adler32_combine(adler1: int, adler2: int, length2: int) -> int:
    """The Adler-32 of A + B from adler32(A), adler32(B) and len(B) (zlib's adler32_combine, which Python lacks)."""
    a1, b1 = adler1 & 0xFFFF, adler1 >> 16
    a2, b2 = adler2 & 0xFFFF, adler2 >> 16
    a = (a1 + a2 - 1) % _ADLER_BASE  # both sums start at 1
    b = (b1 + b2 + length2 * (a1 - 1)) % _ADLER_BASE  # B's running sums each start a1 - 1 higher
    return (b << 16) | a


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def atomic_write(path: Path, data) -> None:
    """Write to a hidden temporary file beside `path`, then rename: readers never see half a file.

    A process killed mid-write (SIGKILL, power loss) leaves the temporary behind: remove_stale_parts cleans those.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_parts(folder: Path, older_than_s: float = STALE_PART_AGE_S, now: float | None = None) -> list[Path]:
    """Delete atomic_write temporaries in `folder` older than `older_than_s` (younger ones may be in use)."""
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for path in entries:
        if not _PART_FILE.match(path.name):
            continue
        try:
            if path.is_file() and now - path.stat().st_mtime > older_than_s:
                path.unlink()
                removed.append(path)
        except OSError:
            pass  # gone already, or not ours to delete: leave it
    return removed
