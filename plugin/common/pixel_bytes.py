"""Pixel byte strings in the daemon's raw formats (gray8 ... rgbaf32), shared by both plug-ins.

Python 2.7 and 3.x, standard library only. Extended-slice copies run in C, so a 12 MP image takes
milliseconds, not a loop over pixels. Rectangles are (x, y, width, height).
"""

from __future__ import absolute_import, division, print_function

import struct
from collections import namedtuple

# colour channels, alpha or not, bytes per sample, depth suffix ('8', '16', 'f32')
PixelFormat = namedtuple("PixelFormat", "channels alpha size depth")
PIXEL_FORMATS = {}
for _depth, _size in (("8", 1), ("16", 2), ("f32", 4)):
    for _kind, _channels in (("gray", 1), ("rgb", 3)):
        PIXEL_FORMATS[_kind + _depth] = PixelFormat(_channels, False, _size, _depth)
        PIXEL_FORMATS[_kind + "a" + _depth] = PixelFormat(_channels, True, _size, _depth)


def pixel_format_name(gray, alpha, depth):
    return ("gray" if gray else "rgb") + ("a" if alpha else "") + depth


def bytes_per_pixel(pixel_format):
    channels, alpha, size, _ = PIXEL_FORMATS[pixel_format]
    return (channels + (1 if alpha else 0)) * size


def expected_size(pixel_format, width, height):
    return width * height * bytes_per_pixel(pixel_format)


def gray_if_channels_equal(data, pixel_format):
    """An RGB byte string whose three channels are equal (a gray photo stored as RGB, or one this plug-in
    converted) as gray: the daemon treats both alike, and a third of the bytes go over the wire."""
    channels, alpha, size, depth = PIXEL_FORMATS[pixel_format]
    if channels != 3 or alpha:
        return data, pixel_format
    stride = 3 * size
    planes = [[data[channel * size + byte::stride] for byte in range(size)] for channel in range(3)]
    if planes[0] != planes[1] or planes[0] != planes[2]:
        return data, pixel_format
    if size == 1:
        return planes[0][0], pixel_format_name(True, False, depth)
    gray = bytearray(len(data) // 3)
    for byte in range(size):
        gray[byte::size] = planes[0][byte]
    return bytes(gray), pixel_format_name(True, False, depth)


def split_alpha(data, pixel_format):
    """(colour bytes, colour format, alpha bytes or None)."""
    channels, alpha, size, depth = PIXEL_FORMATS[pixel_format]
    colour_format = pixel_format_name(channels == 1, False, depth)
    if not alpha:
        return data, colour_format, None
    stride = (channels + 1) * size
    colour = bytearray(len(data) // stride * channels * size)
    for byte in range(channels * size):
        colour[byte::channels * size] = data[byte::stride]
    alpha_bytes = bytearray(len(data) // stride * size)
    for byte in range(size):
        alpha_bytes[byte::size] = data[channels * size + byte::stride]
    return bytes(colour), colour_format, bytes(alpha_bytes)


def join_alpha(rgb, pixel_format, alpha):
    """Interleave an RGB byte string with an alpha plane of the same depth -> (bytes, rgba format).
    ValueError when the two do not have the same number of pixels."""
    channels, _, size, depth = PIXEL_FORMATS[pixel_format]
    if len(alpha) // size != len(rgb) // (channels * size):
        raise ValueError("%d alpha samples for %d pixels" % (len(alpha) // size, len(rgb) // (channels * size)))
    stride = (channels + 1) * size
    out = bytearray(len(alpha) // size * stride)
    for byte in range(channels * size):
        out[byte::stride] = rgb[byte::channels * size]
    for byte in range(size):
        out[channels * size + byte::stride] = alpha[byte::size]
    return bytes(out), pixel_format_name(channels == 1, True, depth)


def to_8bit(data, pixel_format):
    """Any depth -> 8 bits per sample (the same channels), rounded as GIMP does; -> (bytes, format)."""
    channels, alpha, size, depth = PIXEL_FORMATS[pixel_format]
    name = pixel_format_name(channels == 1, alpha, "8")
    if depth == "8":
        return data, name
    count = len(data) // size
    if depth == "16":
        values = struct.unpack("<%dH" % count, data)
        return bytes(bytearray((value * 255 + 32767) // 65535 for value in values)), name
    values = struct.unpack("<%df" % count, data)
    return bytes(bytearray(int(min(1.0, max(0.0, value)) * 255.0 + 0.5) for value in values)), name


def to_rgba8(data, pixel_format):
    """8-bit-or-deeper gray/RGB with or without alpha -> RGBA, 8 bits per sample (opaque without alpha)."""
    data, pixel_format = to_8bit(data, pixel_format)
    channels, alpha, _, _ = PIXEL_FORMATS[pixel_format]
    stride = channels + (1 if alpha else 0)
    count = len(data) // stride
    out = bytearray(b"\xff" * (count * 4))
    for channel in range(3):
        out[channel::4] = data[(channel if channels == 3 else 0)::stride]
    if alpha:
        out[3::4] = data[channels::stride]
    return bytes(out)


def to_rgb8(data, pixel_format):
    """Drop the alpha and repeat gray into R, G and B -> RGB, 8 bits per sample."""
    rgba = to_rgba8(data, pixel_format)
    out = bytearray(len(rgba) // 4 * 3)
    for channel in range(3):
        out[channel::3] = rgba[channel::4]
    return bytes(out)


def intersect(first, second):
    """The overlap of two rectangles, or None."""
    x0, y0 = max(first[0], second[0]), max(first[1], second[1])
    x1 = min(first[0] + first[2], second[0] + second[2])
    y1 = min(first[1] + first[3], second[1] + second[3])
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def place_in_rect(part, part_rect, rect, pixel_size):
    """`part` (pixels of part_rect, which lies inside rect) on a canvas of rect, zeros (transparent) around it."""
    px, py, pw, ph = part_rect
    x, y, w, h = rect
    if part_rect == rect:
        return part
    out = bytearray(w * h * pixel_size)
    row_bytes, part_row = w * pixel_size, pw * pixel_size
    left = (px - x) * pixel_size
    for row in range(ph):
        start = (py - y + row) * row_bytes + left
        out[start:start + part_row] = part[row * part_row:(row + 1) * part_row]
    return bytes(out)


def alpha_is_empty(rgba8):
    """True when every pixel of an RGBA 8-bit byte string is fully transparent."""
    alpha = rgba8[3::4]
    return not alpha.strip(b"\x00")


def darker_of(first, second):
    """The per-pixel minimum of two gray8 masks (a layer mask from the daemon, limited by the selection)."""
    if first == second:
        return first
    return bytes(bytearray(min(a, b) for a, b in zip(bytearray(first), bytearray(second))))
