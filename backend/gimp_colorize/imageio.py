"""Pixels in and out: raw buffers (the plug-in's format), PNG/JPEG/TIFF files, PNG output, atomic writes.

Decoded images are numpy arrays shaped (H, W) or (H, W, C) with C in 1..4, dtype uint8, uint16 or float32,
ready for Engine.colorize. Known limitation: Pillow reads 16-bit *colour* PNG/TIFF as 8-bit (it has no
48-bit mode); 16-bit grayscale, the usual black-and-white scan, keeps its full depth.
"""

from __future__ import annotations

import io
import os
import secrets
import warnings
from pathlib import Path

import numpy as np

from .errors import ImageTooLarge, InvalidImage

# format name -> (channels, little-endian dtype); docs/DESIGN.md "HTTP API v1" lists the same names
RAW_FORMATS: dict[str, tuple[int, np.dtype]] = {}
for _layout, _channels in (("gray", 1), ("graya", 2), ("rgb", 3), ("rgba", 4)):
    for _suffix, _dtype in (("8", "u1"), ("16", "<u2"), ("f32", "<f4")):
        RAW_FORMATS[_layout + _suffix] = (_channels, np.dtype(_dtype))

FILE_CONTENT_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/tiff": "TIFF"}
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
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_pixel_count(image.size, max_pixels)
            image.load()
            image = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"the image is too large to decode safely ({exc})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidImage(f"cannot decode the image: {exc}") from None
    return _pil_to_array(image)


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


def encode_png(pixels: np.ndarray) -> bytes:
    """8-bit PNG for uint8 input, 16-bit PNG otherwise (float is scaled to 16 bits)."""
    from PIL import Image

    if pixels.dtype != np.uint8:
        return _encode_png16(pixels)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _encode_png16(pixels: np.ndarray) -> bytes:
    """Pillow cannot write 16-bit colour PNGs, so write the chunks directly (filter 0, zlib)."""
    import struct
    import zlib

    if pixels.dtype != np.uint16:
        pixels = np.round(np.clip(pixels, 0.0, 1.0) * 65535.0).astype(np.uint16)
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = pixels.astype(">u2").reshape(height, width * channels).view(np.uint8)
    scanlines = np.zeros((height, rows.shape[1] + 1), np.uint8)  # leading 0 = filter "None"
    scanlines[:, 1:] = rows

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    compressed = zlib.compress(scanlines.tobytes(), PNG_COMPRESS_LEVEL)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", compressed) + chunk(b"IEND", b"")


def atomic_write(path: Path, data) -> None:
    """Write to a hidden temporary file beside `path`, then rename: readers never see half a file."""
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
