"""A faithful stub of the parts of GIMP 2.10's `gimp` module (pygimp) the plug-in uses.

Runs on Python 2.7 and 3.x. 8-bit images only (what pixel regions give a Python-Fu plug-in).
Where real GIMP is strict or lossy, so is this stub:
- pixel regions take and return byte strings of exactly width * height * bpp bytes, addressed in
  drawable coordinates, and only inside the region; writing needs a region opened dirty, and the
  data reach the drawable only on flush(), as with GIMP's tile cache;
- an RGB layer inserted into a GRAY image silently becomes gray;
- every change to an image outside an undo group is an undo step of its own (image.undo_steps);
- progress values and messages are recorded (progress_values, messages);
- layer groups hold their layers in `layers` (top first) like the image, and GIMP's rule that a layer
  name is unique in the whole image applies across groups;
- the selection is a set of rectangles (replace or add), read through gimp-image-get-selection as a
  channel of the image's size; thumbnails are the top visible layer (nearest-neighbour when shrunk);
  files load from `files` (path -> Image), anything else fails like GIMP's loader.
"""

from __future__ import absolute_import, division, print_function

from gimpenums import (ADD_MASK_SELECTION, ADD_MASK_WHITE, CHANNEL_OP_ADD, CHANNEL_OP_REPLACE, FILL_TRANSPARENT, GRAY,
                       GRAY_IMAGE, GRAYA_IMAGE, LAYER_MODE_NORMAL, RGB, RGB_IMAGE, RGBA_IMAGE)

BPP = {RGB_IMAGE: 3, RGBA_IMAGE: 4, GRAY_IMAGE: 1, GRAYA_IMAGE: 2}

progress_values = []
progress_texts = []
messages = []


class error(RuntimeError):
    """pygimp's exception for failed PDB calls."""


def progress_init(message=None):
    progress_texts.append(message)


def progress_update(fraction):
    progress_values.append(float(fraction))


def message(text):
    messages.append(text)


def reset_records():
    del progress_values[:], progress_texts[:], messages[:]
    files.clear()


files = {}  # path -> Image: what gimp-file-load can open


# ---------------------------------------------------------------------------------------------------


class Image(object):
    def __init__(self, width, height, base_type=RGB):
        self.width, self.height, self.base_type = width, height, base_type
        self.layers = []  # top first
        self.selection = None  # a list of (x, y, w, h) rectangles, or None
        self.name = "Untitled"
        self.deleted = False
        self._active = None
        self.undo_steps = 0
        self.undo_group_depth = 0
        self._changed_in_group = False

    def record_change(self):
        if self.undo_group_depth:
            self._changed_in_group = True
        else:
            self.undo_steps += 1

    @property
    def active_layer(self):
        if self._active is not None:
            return self._active
        return self.layers[0] if self.layers else None

    def all_layers(self):
        found = []
        for layer in self.layers:
            found.append(layer)
            found.extend(getattr(layer, "all_children", lambda: [])())
        return found


class Parasite(object):
    def __init__(self, name, flags, data):
        self.name, self.flags, self.data = name, flags, data


_TATTOOS = [0]


class Drawable(object):
    def __init__(self, image, name, width, height, kind):
        if kind not in BPP:
            raise error("unsupported drawable type %r" % (kind,))
        _TATTOOS[0] += 1
        self.tattoo = _TATTOOS[0]
        self.parasites = {}
        self.image, self.name = image, name
        self.width, self.height, self.type = width, height, kind
        self.data = bytes(bytearray(width * height * BPP[kind]))
        self._pending = []
        self.offsets = (0, 0)

    @property
    def bpp(self):
        return BPP[self.type]

    @property
    def has_alpha(self):
        return self.type in (RGBA_IMAGE, GRAYA_IMAGE)

    @property
    def is_gray(self):
        return self.type in (GRAY_IMAGE, GRAYA_IMAGE)

    @property
    def is_rgb(self):
        return self.type in (RGB_IMAGE, RGBA_IMAGE)

    def get_pixel_rgn(self, x, y, width, height, dirty=True, shadow=False):
        if shadow:
            raise error("the stub has no shadow tiles; the plug-in does not need them")
        if x < 0 or y < 0 or width <= 0 or height <= 0 or x + width > self.width or y + height > self.height:
            raise error("pixel region %r outside the drawable" % ((x, y, width, height),))
        return PixelRgn(self, x, y, width, height, dirty)

    def parasite_find(self, name):
        return self.parasites.get(name)

    def attach_new_parasite(self, name, flags, data):
        if not isinstance(data, (bytes, str)):
            raise TypeError("parasite data must be a string")
        self.parasites[name] = Parasite(name, flags, data)
        if self._inserted():
            self.image.record_change()

    def _inserted(self):
        image = self.image
        return isinstance(image, Image) and self in image.all_layers()

    def flush(self):
        for region, data in self._pending:
            self._write(region, data)
        if self._pending and (self._inserted() or isinstance(self, Channel) and self.layer._inserted()):
            self.image.record_change()
        self._pending = []

    def update(self, x, y, width, height):
        pass

    def _write(self, rect, data):
        x, y, w, h = rect
        rows = bytearray(self.data)
        row_bytes, bpp = self.width * self.bpp, self.bpp
        for row in range(h):
            start = (y + row) * row_bytes + x * bpp
            rows[start:start + w * bpp] = data[row * w * bpp:(row + 1) * w * bpp]
        self.data = bytes(rows)

    def _read(self, rect):
        x, y, w, h = rect
        row_bytes, bpp = self.width * self.bpp, self.bpp
        return b"".join(self.data[(y + row) * row_bytes + x * bpp:(y + row) * row_bytes + (x + w) * bpp]
                        for row in range(h))


class Layer(Drawable):
    def __init__(self, image, name, width, height, kind=RGB_IMAGE, opacity=100.0, mode=LAYER_MODE_NORMAL):
        Drawable.__init__(self, image, name, width, height, kind)
        self.opacity, self.mode = opacity, mode
        self.mask = None
        self.parent = None
        self.visible = True

    def set_offsets(self, x, y):
        self.offsets = (x, y)
        if self._inserted():
            self.image.record_change()

    def create_mask(self, mask_type):
        if mask_type == ADD_MASK_SELECTION:
            return Channel(self.image, self.name + " mask", self, self.image.selection)
        if mask_type == ADD_MASK_WHITE:
            return Channel(self.image, self.name + " mask", self, None)
        raise error("mask type %r is not in the stub" % (mask_type,))

    def add_mask(self, mask):
        if self.mask is not None:
            raise error("the layer already has a mask")
        if mask.layer is not self:
            raise error("the mask was created for another layer")
        self.mask = mask
        self.image.record_change()


class GroupLayer(Layer):
    """A layer group (pygimp's gimp.GroupLayer): its layers, top first, in `layers`; no pixels of its own."""

    def __init__(self, image, name="Layer Group"):
        Layer.__init__(self, image, name, 1, 1, RGBA_IMAGE)
        self.layers = []

    def all_children(self):
        found = []
        for layer in self.layers:
            found.append(layer)
            found.extend(getattr(layer, "all_children", lambda: [])())
        return found

    def get_pixel_rgn(self, *args, **kwargs):
        raise error("a layer group has no pixels of its own to read or write")


def _selection_bytes(selection, width, height, offsets=(0, 0)):
    """255 inside any of the selection's rectangles (image coordinates), 0 elsewhere, over a drawable."""
    if selection is None:
        return bytes(bytearray(b"\xff" * (width * height)))
    mask = bytearray(width * height)
    ox, oy = offsets
    for sx, sy, sw, sh in selection:
        for y in range(max(0, sy - oy), min(height, sy + sh - oy)):
            left, right = max(0, sx - ox), min(width, sx + sw - ox)
            if right > left:
                mask[y * width + left:y * width + right] = b"\xff" * (right - left)
    return bytes(mask)


class Channel(Drawable):
    """A layer mask: 255 inside the selection's rectangles (image coordinates), 0 outside; all 255 (white)
    without a selection."""

    def __init__(self, image, name, layer, selection):
        Drawable.__init__(self, image, name, layer.width, layer.height, GRAY_IMAGE)
        self.layer = layer
        self.selection = selection
        self.data = _selection_bytes(selection, layer.width, layer.height, layer.offsets)

    def update(self, x, y, width, height):
        pass


class Selection(Drawable):
    """The image's selection mask, as gimp-image-get-selection gives it (read only here)."""

    def __init__(self, image):
        Drawable.__init__(self, image, "Selection Mask", image.width, image.height, GRAY_IMAGE)
        self.data = _selection_bytes(image.selection, image.width, image.height) if image.selection else bytes(
            bytearray(image.width * image.height))


class PixelRgn(object):
    def __init__(self, drawable, x, y, width, height, dirty):
        self.drawable, self.x, self.y, self.w, self.h, self.dirty = drawable, x, y, width, height, dirty
        self.bpp = drawable.bpp

    def _rect(self, key):
        if not isinstance(key, tuple) or len(key) != 2:
            raise TypeError("subscript must be [x0:x1, y0:y1] or [x, y]")
        spans = []
        for part, start, size in ((key[0], self.x, self.w), (key[1], self.y, self.h)):
            if isinstance(part, slice):
                if part.step not in (None, 1):
                    raise IndexError("steps are not supported")
                low, high = part.start, part.stop
            else:
                low, high = part, part + 1
            if low is None or high is None or low < start or high > start + size or high <= low:
                raise IndexError("subscript out of range")
            spans.append((low, high - low))
        return spans[0][0], spans[1][0], spans[0][1], spans[1][1]

    def __getitem__(self, key):
        return self.drawable._read(self._rect(key))

    def __setitem__(self, key, data):
        rect = self._rect(key)
        if not self.dirty:
            raise error("writing into a pixel region that was not opened dirty is lost")
        if not isinstance(data, bytes) or len(data) != rect[2] * rect[3] * self.bpp:
            raise TypeError("string is wrong length (%s, want %d bytes)" % (type(data).__name__,
                                                                             rect[2] * rect[3] * self.bpp))
        self.drawable._pending.append((rect, data))


# ---------------------------------------------------------------------------------------------------
# The procedural database


def _gray_from_rgb(data, has_alpha):
    stride = 4 if has_alpha else 3
    rgb = bytearray(data)
    out = bytearray()
    for i in range(0, len(rgb), stride):
        out.append((rgb[i] * 299 + rgb[i + 1] * 587 + rgb[i + 2] * 114 + 500) // 1000)
        if has_alpha:
            out.append(rgb[i + 3])
    return bytes(out)


def _rgb_from_gray(data, has_alpha):
    stride, out_stride = (2, 4) if has_alpha else (1, 3)
    out = bytearray(len(data) // stride * out_stride)
    for channel in range(3):
        out[channel::out_stride] = data[0::stride]
    if has_alpha:
        out[3::out_stride] = data[1::stride]
    return bytes(out)


def _pixel_layers(image):
    return [layer for layer in image.all_layers() if not isinstance(layer, GroupLayer)]


class _Pdb(object):
    def __init__(self):
        self.procedures = {}  # registered by gimpfu.register: name -> callable(run_mode, *args)

    def __getattr__(self, name):
        procedures = self.__dict__.get("procedures", {})
        dashed = name.replace("_", "-")
        if dashed in procedures:
            return lambda *args, **kw: procedures[dashed](kw.get("run_mode", 1), *args)
        raise AttributeError("the stub pdb has no procedure %s" % name)

    @staticmethod
    def gimp_image_insert_layer(image, layer, parent, position):
        if layer.image is not image or layer in image.all_layers():
            raise error("the layer belongs to another image or is already inserted")
        if parent is not None and (not isinstance(parent, GroupLayer) or parent not in image.all_layers()):
            raise error("the parent is not a layer group of this image")
        if image.base_type == GRAY and layer.is_rgb and not isinstance(layer, GroupLayer):
            layer.data = _gray_from_rgb(layer.data, layer.has_alpha)  # GIMP converts silently
            layer.type = GRAYA_IMAGE if layer.has_alpha else GRAY_IMAGE
        names = [other.name for other in image.all_layers()]
        base, number = layer.name, 1
        while layer.name in names:  # GIMP keeps names unique its own way: "name #1", "name #2", ...
            layer.name = "%s #%d" % (base, number)
            number += 1
        row = parent.layers if parent is not None else image.layers
        row.insert(max(0, min(position, len(row))), layer)
        layer.parent = parent
        image.record_change()

    @staticmethod
    def gimp_layer_group_new(image):
        return GroupLayer(image)

    @staticmethod
    def gimp_item_set_name(item, name):
        item.name = name
        if item._inserted():
            item.image.record_change()

    @staticmethod
    def gimp_item_set_visible(item, visible):
        item.visible = bool(visible)
        if item._inserted():
            item.image.record_change()

    @staticmethod
    def gimp_item_is_group(item):
        return 1 if isinstance(item, GroupLayer) else 0

    @staticmethod
    def gimp_item_get_parent(item):
        return item.parent

    @staticmethod
    def gimp_image_get_layer_by_tattoo(image, tattoo):
        found = [layer for layer in image.all_layers() if layer.tattoo == tattoo]
        return found[0] if found else None

    @staticmethod
    def gimp_image_set_active_layer(image, layer):
        if layer not in image.all_layers():
            raise error("gimp-image-set-active-layer: the layer is not in the image")
        image._active = layer

    @staticmethod
    def gimp_drawable_fill(drawable, fill_type):
        if fill_type != FILL_TRANSPARENT or not drawable.has_alpha:
            raise error("the stub fills only layers with alpha, and only with transparency")
        drawable.data = bytes(bytearray(len(drawable.data)))
        if drawable._inserted():
            drawable.image.record_change()

    @staticmethod
    def gimp_image_get_selection(image):
        return Selection(image)

    @staticmethod
    def gimp_image_thumbnail(image, width, height):
        if width > 1024 or height > 1024:
            raise error("gimp-image-thumbnail: width and height must be at most 1024")
        top = [layer for layer in image.layers if layer.visible and not isinstance(layer, GroupLayer)][0]
        scale = min(1.0, float(width) / top.width, float(height) / top.height)
        out_w, out_h = max(1, int(top.width * scale)), max(1, int(top.height * scale))
        data = bytearray()
        for y in range(out_h):
            for x in range(out_w):
                start = (int(y / scale) * top.width + int(x / scale)) * top.bpp
                data += top.data[start:start + top.bpp]
        return out_w, out_h, top.bpp, len(data), tuple(data)

    @staticmethod
    def gimp_file_load(filename, raw_filename):
        if filename not in files:
            raise error("Could not open '%s' for reading: No such file or directory" % filename)
        return files[filename]

    @staticmethod
    def gimp_image_delete(image):
        image.deleted = True

    @staticmethod
    def gimp_progress_pulse():
        progress_texts.append("<pulse>")

    @staticmethod
    def gimp_image_get_item_position(image, item):
        row = item.parent.layers if item.parent is not None else image.layers
        return row.index(item)

    @staticmethod
    def gimp_image_convert_rgb(image):
        if image.base_type != GRAY:
            raise error("gimp-image-convert-rgb: the image is already RGB")
        for layer in _pixel_layers(image):
            layer.data = _rgb_from_gray(layer.data, layer.has_alpha)
            layer.type = RGBA_IMAGE if layer.has_alpha else RGB_IMAGE
        image.base_type = RGB
        image.record_change()

    @staticmethod
    def gimp_image_convert_grayscale(image):
        if image.base_type != RGB:
            raise error("gimp-image-convert-grayscale: the image is already gray")
        for layer in _pixel_layers(image):
            layer.data = _gray_from_rgb(layer.data, layer.has_alpha)
            layer.type = GRAYA_IMAGE if layer.has_alpha else GRAY_IMAGE
        image.base_type = GRAY
        image.record_change()

    @staticmethod
    def gimp_image_select_rectangle(image, operation, x, y, width, height):
        if operation not in (CHANNEL_OP_REPLACE, CHANNEL_OP_ADD):
            raise error("only CHANNEL_OP_REPLACE and CHANNEL_OP_ADD are in the stub")
        kept = (image.selection or []) if operation == CHANNEL_OP_ADD else []
        image.selection = kept + [(x, y, width, height)]

    @staticmethod
    def gimp_selection_none(image):
        image.selection = None

    @staticmethod
    def gimp_selection_is_empty(image):
        return image.selection is None

    @staticmethod
    def gimp_drawable_mask_intersect(drawable):
        ox, oy = drawable.offsets
        x0, y0, x1, y1 = ox, oy, ox + drawable.width, oy + drawable.height
        if drawable.image.selection is not None:
            boxes = drawable.image.selection
            sx0, sy0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
            sx1, sy1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
            x0, y0, x1, y1 = max(x0, sx0), max(y0, sy0), min(x1, sx1), min(y1, sy1)
        if x1 <= x0 or y1 <= y0:
            return (False, 0, 0, 0, 0)
        return (True, x0 - ox, y0 - oy, x1 - x0, y1 - y0)

    @staticmethod
    def gimp_image_undo_group_start(image):
        if image.undo_group_depth == 0:
            image._changed_in_group = False
        image.undo_group_depth += 1

    @staticmethod
    def gimp_image_undo_group_end(image):
        if image.undo_group_depth == 0:
            raise error("gimp-image-undo-group-end without a start")
        image.undo_group_depth -= 1
        if image.undo_group_depth == 0 and image._changed_in_group:
            image.undo_steps += 1

    @staticmethod
    def gimp_progress_set_text(text):
        progress_texts.append(text)

    @staticmethod
    def gimp_progress_end():
        progress_texts.append(None)

    @staticmethod
    def gimp_message(text):
        message(text)


pdb = _Pdb()
