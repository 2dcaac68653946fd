"""An in-memory image editor behind colorize_flow.HostAdapter, for testing the flow without GIMP.

Runs on Python 2.7 and 3.x. It is strict where GIMP is: layers may only be added inside an undo
group (so a forgotten group fails the test), an RGB layer added to a GRAY image is an error (GIMP
would silently make it gray), layer names must be unique in the whole image (GIMP would append "#1"),
and every change is logged so tests can check what happened. Layer groups hold their layers in
`children` (top first), as the image holds its top-level layers in `layers`.
"""

from __future__ import absolute_import, division, print_function

import colorize_flow
import pixel_bytes
from colorize_flow import PIXEL_FORMATS, UserError, pixel_format_name

_TATTOOS = [0]


def _next_tattoo():
    _TATTOOS[0] += 1
    return _TATTOOS[0]


class FakeLayer(object):
    def __init__(self, name, width, height, pixels, pixel_format, offsets=(0, 0), blend="normal", group=False):
        self.tattoo = _next_tattoo()
        self.image = None
        self.parent = None
        self.children = [] if group else None
        self.parasites = {}  # name -> bytes
        self.name = name
        self.width, self.height = width, height
        self.pixels, self.format = pixels, pixel_format
        self.offsets = offsets
        self.blend = blend
        self.visible = True
        self.mask = None  # the selection the mask was made from (image coordinates), or the bytes set_mask gave

    @property
    def is_group(self):
        return self.children is not None

    def rows(self):
        size = len(self.pixels) // (self.width * self.height)
        return [self.pixels[y * self.width * size:(y + 1) * self.width * size] for y in range(self.height)]


class FakeImage(object):
    def __init__(self, width, height, gray=True, depth="8", name="photo.png"):
        self.width, self.height = width, height
        self.gray, self.depth = gray, depth
        self.name = name
        self.layers = []  # top first, as in GIMP's layers dialog
        self.selection = None  # (x, y, w, h) in image coordinates, a list of them, or None
        self.selected = None  # the active layer
        self.undo_steps = 0
        self.open_groups = 0
        self._changes_at_group_start = 0
        self.log = []
        self.deleted = False

    def add_source(self, name, pixels, alpha=False, offsets=(0, 0), size=None, gray=None):
        width, height = size or (self.width, self.height)
        gray = self.gray if gray is None else gray
        layer = FakeLayer(name, width, height, pixels, pixel_format_name(gray, alpha, self.depth), offsets)
        layer.image = self
        self.layers.append(layer)
        return layer

    def all_layers(self):
        found = []
        for layer in self.layers:
            found.extend(_with_children(layer))
        return found

    def change(self, what):
        if self.open_groups == 0:
            raise AssertionError("image changed outside an undo group: %s" % what)
        self.log.append(what)

    def selection_boxes(self):
        if self.selection is None:
            return []
        return [self.selection] if isinstance(self.selection, tuple) else list(self.selection)


def _with_children(layer):
    found = [layer]
    for child in layer.children or []:
        found.extend(_with_children(child))
    return found


def siblings(image, layer):
    return layer.parent.children if layer.parent is not None else image.layers


def crop(layer, rect):
    x, y, w, h = rect
    size = len(layer.pixels) // (layer.width * layer.height)
    rows = layer.rows()[y:y + h]
    return b"".join(row[x * size:(x + w) * size] for row in rows)


def gray_to_rgb(pixels, pixel_format):
    channels, alpha, size, depth = PIXEL_FORMATS[pixel_format]
    if channels == 3:
        return pixels, pixel_format
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
    def __init__(self, cancel_after=None, files=None):
        self.write_progress = []
        self.pulses = 0
        self.progress = []
        self.progress_texts = []
        self.progress_ended = False
        self.cancel_after = cancel_after  # is_cancelled() turns True on this call
        self.cancel_checks = 0
        self.files = files or {}  # path -> FakeImage, for load_image
        self.reads = []  # (layer name, rect) of every read_pixels / read_rgba8

    def selection_rect(self, image, drawable):
        x0, y0 = drawable.offsets
        x1, y1 = x0 + drawable.width, y0 + drawable.height
        boxes = image.selection_boxes()
        if boxes:
            sx0 = min(box[0] for box in boxes)
            sy0 = min(box[1] for box in boxes)
            sx1 = max(box[0] + box[2] for box in boxes)
            sy1 = max(box[1] + box[3] for box in boxes)
            x0, y0, x1, y1 = max(x0, sx0), max(y0, sy0), min(x1, sx1), min(y1, sy1)
        if x1 <= x0 or y1 <= y0:
            return None
        return (x0 - drawable.offsets[0], y0 - drawable.offsets[1], x1 - x0, y1 - y0)

    def has_selection(self, image):
        return image.selection is not None

    def read_selection(self, image, rect):
        x, y, w, h = rect
        out = bytearray(w * h)
        for sx, sy, sw, sh in image.selection_boxes():
            for row in range(max(y, sy, 0), min(y + h, sy + sh, image.height)):
                left, right = max(x, sx, 0), min(x + w, sx + sw, image.width)
                if right > left:
                    start = (row - y) * w + left - x
                    out[start:start + right - left] = b"\xff" * (right - left)
        return bytes(out)

    def read_pixels(self, image, drawable, rect):
        self.reads.append((drawable.name, rect))
        return crop(drawable, rect), drawable.format

    def image_is_gray(self, image):
        return image.gray

    def convert_to_rgb(self, image):
        image.change("convert_rgb")
        image.gray = False
        for layer in image.all_layers():
            if not layer.is_group:
                layer.pixels, layer.format = gray_to_rgb(layer.pixels, layer.format)

    def convert_to_gray(self, image):
        image.change("convert_gray")
        image.gray = True
        for layer in image.all_layers():
            if not layer.is_group:
                layer.pixels, layer.format = rgb_to_gray(layer.pixels, layer.format)

    def _insert(self, image, item, above, group):
        if item.name in [layer.name for layer in image.all_layers()]:
            raise AssertionError("GIMP would rename a duplicate %r to %r" % (item.name, item.name + " #1"))
        item.image = image
        if group is not None:
            item.parent = group
            group.children.append(item)
        else:
            item.parent = above.parent
            row = siblings(image, above)
            row.insert(row.index(above), item)

    def add_layer(self, image, source, above, name, rect, pixels, pixel_format, blend, on_progress=None,
                  group=None):
        image.change("add_layer %s" % name)
        if image.gray:
            raise AssertionError("an RGB layer added to a GRAY image turns gray: convert the image first")
        if PIXEL_FORMATS[pixel_format].channels != 3 or PIXEL_FORMATS[pixel_format].depth != image.depth:
            raise AssertionError("layer format %s does not match the image (depth %s)" % (pixel_format, image.depth))
        x, y, w, h = rect
        offsets = (source.offsets[0] + x, source.offsets[1] + y)
        layer = FakeLayer(name, w, h, pixels, pixel_format, offsets, blend)
        if len(pixels) != colorize_flow.expected_size(pixel_format, w, h):
            raise AssertionError("wrong byte count for %s %dx%d" % (pixel_format, w, h))
        self._insert(image, layer, above, group)
        for fraction in (0.5, 1.0):
            if on_progress is not None:
                on_progress(fraction)
                self.write_progress.append(fraction)
        return layer

    def add_group(self, image, above, name):
        image.change("add_group %s" % name)
        group = FakeLayer(name, 0, 0, b"", None, group=True)
        self._insert(image, group, above, None)
        return group

    def add_empty_layer(self, image, above, name, bounds):
        image.change("add_empty_layer %s" % name)
        x, y, w, h = bounds
        layer = FakeLayer(name, w, h, bytes(bytearray(w * h * 4)), pixel_format_name(image.gray, True, "8"), (x, y))
        self._insert(image, layer, above, None)
        return layer

    def mask_to_selection(self, image, layer):
        image.change("add_mask %s" % layer.name)
        if layer.mask is not None:
            raise AssertionError("%s already has a mask" % layer.name)
        layer.mask = image.selection

    def set_mask(self, image, layer, mask):
        image.change("set_mask %s" % layer.name)
        if layer.mask is not None or len(mask) != layer.width * layer.height:
            raise AssertionError("a mask of %d bytes for %s (%dx%d)" % (len(mask), layer.name, layer.width,
                                                                        layer.height))
        layer.mask = mask

    def set_visible(self, layer, visible):
        layer.image.change("visible %s %s" % (layer.name, visible))
        layer.visible = visible

    def select_layer(self, image, layer):
        image.selected = layer

    def all_layers(self, image):
        return image.all_layers()

    def layer_parent(self, layer):
        return layer.parent

    def layer_below(self, image, layer):
        row = siblings(image, layer)
        position = row.index(layer)
        return row[position + 1] if position + 1 < len(row) else None

    def is_group(self, layer):
        return layer.is_group

    def has_alpha(self, layer):
        return PIXEL_FORMATS[layer.format].alpha

    def same_layer(self, first, second):
        return first is second

    def layer_bounds(self, layer):
        return (layer.offsets[0], layer.offsets[1], layer.width, layer.height)

    def read_rgba8(self, image, drawable, rect):
        self.reads.append((drawable.name, rect))
        return pixel_bytes.to_rgba8(crop(drawable, rect), drawable.format)

    def layer_name(self, layer):
        return layer.name

    def layer_tattoo(self, layer):
        return layer.tattoo

    def layer_by_tattoo(self, image, tattoo):
        found = [layer for layer in image.all_layers() if layer.tattoo == tattoo]
        return found[0] if found else None

    def read_parasite(self, layer, name):
        return layer.parasites.get(name)

    def write_parasite(self, layer, name, data):
        if layer.image is not None:
            layer.image.change("parasite %s on %s" % (name, layer.name))
        if not isinstance(data, bytes):
            raise AssertionError("parasite data must be bytes")
        layer.parasites[name] = data

    def image_name(self, image):
        return image.name

    def image_thumbnail(self, image, size):
        """The top visible layer, as it is (the fake's images are smaller than `size`)."""
        if image.deleted:
            raise AssertionError("thumbnail of a deleted image")
        top = [layer for layer in image.layers if layer.visible and not layer.is_group][0]
        if max(top.width, top.height) > size:
            raise AssertionError("the fake makes no scaled thumbnails: use a smaller reference")
        return top.pixels, top.width, top.height, top.format

    def load_image(self, path):
        if path not in self.files:
            raise UserError("Cannot open the reference photo %s (no such file). Choose an image file GIMP can "
                            "open." % path)
        return self.files[path]

    def delete_image(self, image):
        image.deleted = True

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
