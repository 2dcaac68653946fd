"""Bad uploads a hostile (or merely broken) client sends, built on the fly in milliseconds.

Each entry: (name, content type, body bytes). Used by tests/test_hostile_input.py against both the
decoder (the CLI path) and the HTTP API; every one must end in a clear 4xx sentence, never a 500, a
Python repr or Pillow's own limits.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def encode(array: np.ndarray, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def noise(height: int = 64, width: int = 64) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (height, width)).astype(np.uint8)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height 8-bit gray pixels but carries a tiny IDAT: a decompression bomb's header."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + png_chunk(b"IEND", b""))


def png_zero_bomb(side: int) -> bytes:
    """A valid PNG of side x side black pixels: a few kB that decode into side**2 bytes."""
    rows = b"".join(b"\0" + b"\0" * side for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows, 9))
            + png_chunk(b"IEND", b""))


def png_bad_crc() -> bytes:
    data = bytearray(encode(noise(8, 8), "PNG"))
    data[29] ^= 0xFF  # inside IHDR's CRC
    return bytes(data)


def tiff_bad_ifd_offset() -> bytes:
    return b"II*\x00" + struct.pack("<I", 0x7FFFFFF0) + b"\0" * 32


def file_uploads() -> list[tuple[str, str, bytes]]:
    """Bad image files (each sent as image/png unless it claims otherwise) and why they are bad."""
    png = encode(noise(), "PNG")
    jpeg = encode(noise(), "JPEG", quality=90)
    return [
        ("zero_bytes", "image/png", b""),
        ("truncated_png", "image/png", png[: len(png) // 2]),
        ("truncated_png_header", "image/png", png[:20]),
        ("truncated_jpeg", "image/jpeg", jpeg[: len(jpeg) // 2]),
        ("jpeg_soi_only", "image/jpeg", b"\xff\xd8\xff"),
        ("png_bad_crc", "image/png", png_bad_crc()),
        ("tiff_bad_ifd_offset", "image/tiff", tiff_bad_ifd_offset()),
        ("gif_as_png", "image/png", encode(noise(8, 8), "GIF")),
        ("bmp_as_png", "image/png", encode(noise(8, 8), "BMP")),
        ("webp_as_png", "image/png", encode(np.stack([noise(8, 8)] * 3, -1), "WEBP")),
        ("text_as_png", "image/png", b"definitely not an image"),
        ("bomb_header_400mp", "image/png", png_header_only(20_000, 20_000)),
        ("bomb_header_100mp", "image/png", png_header_only(10_000, 10_000)),
        ("bomb_zeros_4mp", "image/png", png_zero_bomb(2_000)),
    ]


# (name, query params, body): raw uploads whose length does not match their declared size
def raw_uploads() -> list[tuple[str, dict, bytes]]:
    return [
        ("raw_short", {"width": 10, "height": 10, "format": "gray8"}, b"\0" * 99),
        ("raw_long", {"width": 10, "height": 10, "format": "gray8"}, b"\0" * 101),
        ("raw_16_bit_odd", {"width": 3, "height": 3, "format": "gray16"}, b"\0" * 9),
        ("raw_unknown_format", {"width": 2, "height": 2, "format": "rgb12"}, b"\0" * 12),
    ]


def absurd_sizes() -> list[dict]:
    """Raw parameters that declare far more than any limit; refused before the body is read."""
    return [
        {"width": 1 << 20, "height": 1 << 20, "format": "rgbaf32"},
        {"width": 1 << 20, "height": 1, "format": "gray8"},
        {"width": 65_536, "height": 65_536, "format": "gray8"},
    ]
