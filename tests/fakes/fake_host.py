"""An in-memory image editor behind colorize_flow.HostAdapter, for testing the flow without GIMP.

Runs on Python 2.7 and 3.x. It is strict where GIMP is: layers may only be added inside an undo
group (so a forgotten group fails the test), an RGB layer added to a GRAY image is an error (GIMP
would silently make it gray), and every change is logged so tests can check what happened.
"""

from __future__ import absolute_import, division, print_function

import colorize_flow
from colorize_flow import PIXEL_FORMATS, pixel_format_name


_TATTOOS = [0]


def _next_tattoo():
    _TATTOOS[0] += 1
    return _TATTOOS[0]


class FakeLayer(object):
    def __init__(self, name, width, height, pixels, pixel_format, offsets=(0, 0), blend="normal"):
        self.tattoo = _next_tattoo()
        self.image = None
        self.parasites = {}  # name -> bytes
        self.name = name
        self.width, self.height = width, height
        self.pixels, self.format = pixels, pixel_format
        self.offsets = offsets
        self.blend = blend
        self.mask = None  # the selection rectangle (image coordinates) the mask was made from

    def rows(self):
        size = len(self.pixels) // (self.width * self.height)
        return [self.pixels[y * self.width * size:(y + 1) * self.width * size] for y in range(self.height)]


class FakeImage(object):
    def __init__(self, width, height, gray=True, depth="8"):
        self.width, self.height = width, height
        self.gray, self.depth = gray, depth
        self.layers = []  # top first, as in GIMP's layers dialog
        self.selection = None  # (x, y, w, h) in image coordinates, or None
        self.undo_steps = 0
        self.open_groups = 0
        self._changes_at_group_start = 0
        self.log = []

    def add_source(self, name, pixels, alpha=False, offsets=(0, 0), size=None):
        width, height = size or (self.width, self.height)
        layer = FakeLayer(name, width, height, pixels, pixel_format_name(self.gray, alpha, self.depth), offsets)
        layer.image = self
        self.layers.append(layer)
        return layer

    def change(self, what):
        if self.open_groups == 0:
            raise AssertionError("image changed outside an undo group: %s" % what)
        self.log.append(what)


def crop(layer, rect):
    x, y, w, h = rect
    size = len(layer.pixels) // (layer.width * layer.height)
    rows = layer.rows()[y:y + h]
    return b"".join(row[x * size:(x + w) * size] for row in rows)


def gray_to_rgb(pixels, pixel_format):
    channels, alpha, size, depth = PIXEL_FORMATS[pixel_format]
    stride = (channels + (1 if alpha else 0)) * size
    count = len(pixels) // stride
    out_stride = (3 + (1 if alpha else 0)) * size
    out = bytearray(count * out_stride)
    for channel in range(3):
        for byte in range(size):
            out[channel * size + byte::out_stride] = pixels[byte::stride]
    if alpha:
        for byte in range(size):
            out[3 * size + byte::out_stride] = pixels[size + byte::stride]
    return bytes(out), pixel_format_name(False, alpha, depth)


def rgb_to_gray(pixels, pixel_format):
    """The first channel of RGB(A) pixels (the fake's conversions keep R = G = B)."""
    channels, alpha, size, depth = PIXEL_FORMATS[pixel_format]
    stride = (channels + (1 if alpha else 0)) * size
    out_stride = (1 + (1 if alpha else 0)) * size
    out = bytearray(len(pixels) // stride * out_stride)
    for byte in range(size):
        out[byte::out_stride] = pixels[byte::stride]
        if alpha:
            out[size + byte::out_stride] = pixels[3 * size + byte::stride]
    return bytes(out), pixel_format_name(True, alpha, depth)


class FakeHost(colorize_flow.HostAdapter):
    def __init__(self, cancel_after=None):
        self.write_progress = []
        self.pulses = 0
        self.progress = []
        self.progress_texts = []
        self.progress_ended = False
        self.cancel_after = cancel_after  # is_cancelled() turns True on this call
        self.cancel_checks = 0

    def selection_rect(self, image, drawable):
        x0, y0 = drawable.offsets
        x1, y1 = x0 + drawable.width, y0 + drawable.height
        if image.selection is not None:
            sx, sy, sw, sh = image.selection
            x0, y0, x1, y1 = max(x0, sx), max(y0, sy), min(x1, sx + sw), min(y1, sy + sh)
        if x1 <= x0 or y1 <= y0:
            return None
        return (x0 - drawable.offsets[0], y0 - drawable.offsets[1], x1 - x0, y1 - y0)

    def has_selection(self, image):
        return image.selection is not None

    def read_pixels(self, image, drawable, rect):
        return crop(drawable, rect), drawable.format

    def image_is_gray(self, image):
        return image.gray

    def convert_to_rgb(self, image):
        image.change("convert_rgb")
        image.gray = False
        for layer in image.layers:
            layer.pixels, layer.format = gray_to_rgb(layer.pixels, layer.format)

    def convert_to_gray(self, image):
        image.change("convert_gray")
        image.gray = True
        for layer in image.layers:
            layer.pixels, layer.format = rgb_to_gray(layer.pixels, layer.format)

    def add_layer(self, image, source, above, name, rect, pixels, pixel_format, blend, on_progress=None):
        image.change("add_layer %s" % name)
        if name in [layer.name for layer in image.layers]:
            raise AssertionError("GIMP would rename a duplicate %r to %r" % (name, name + " #1"))
        if image.gray:
            raise AssertionError("an RGB layer added to a GRAY image turns gray: convert the image first")
        if PIXEL_FORMATS[pixel_format].channels != 3 or PIXEL_FORMATS[pixel_format].depth != image.depth:
            raise AssertionError("layer format %s does not match the image (depth %s)" % (pixel_format, image.depth))
        x, y, w, h = rect
        offsets = (source.offsets[0] + x, source.offsets[1] + y)
        layer = FakeLayer(name, w, h, pixels, pixel_format, offsets, blend)
        layer.image = image
        if len(pixels) != colorize_flow.expected_size(pixel_format, w, h):
            raise AssertionError("wrong byte count for %s %dx%d" % (pixel_format, w, h))
        image.layers.insert(image.layers.index(above), layer)
        for fraction in (0.5, 1.0):
            if on_progress is not None:
                on_progress(fraction)
                self.write_progress.append(fraction)
        return layer

    def mask_to_selection(self, image, layer):
        image.change("add_mask %s" % layer.name)
        layer.mask = image.selection

    def layer_names(self, image):
        return [layer.name for layer in image.layers]

    def layer_name(self, layer):
        return layer.name

    def layer_tattoo(self, layer):
        return layer.tattoo

    def layer_by_tattoo(self, image, tattoo):
        found = [layer for layer in image.layers if layer.tattoo == tattoo]
        return found[0] if found else None

    def read_parasite(self, layer, name):
        return layer.parasites.get(name)

    def write_parasite(self, layer, name, data):
        if layer.image is not None:
            layer.image.change("parasite %s on %s" % (name, layer.name))
        if not isinstance(data, bytes):
            raise AssertionError("parasite data must be bytes")
        layer.parasites[name] = data

    def undo_group_start(self, image):
        if image.open_groups == 0:
            image._changes_at_group_start = len(image.log)
        image.open_groups += 1

    def undo_group_end(self, image):
        image.open_groups -= 1
        if image.open_groups == 0 and len(image.log) > image._changes_at_group_start:
            image.undo_steps += 1

    def progress_init(self, text):
        self.progress_texts.append(text)

    def progress_update(self, fraction):
        self.progress.append(fraction)

    def progress_text(self, text):
        self.progress_texts.append(text)

    def progress_end(self):
        self.progress_ended = True

    def progress_pulse(self):
        self.pulses += 1


    def is_cancelled(self):
        self.cancel_checks += 1
        return self.cancel_after is not None and self.cancel_checks >= self.cancel_after
