"""GIMP 2.10 adapter for colorize_flow (Python 2.7, gimpfu): pixel regions, pdb calls, gimp.progress_*.

GIMP 2.10 hands plug-ins that use pixel regions 8-bit gamma-encoded pixels whatever the image's
precision (the core converts), so this adapter always speaks the daemon's 8-bit formats; new layers
are created in the image's own precision and GIMP converts the 8-bit data on write. Pixel regions
exist only inside a drawable: reads that reach beyond one are padded with transparent zeros here.
"""

from __future__ import absolute_import, division, print_function

import gimpfu
from gimpfu import gimp, pdb

import colorize_flow
import pixel_bytes
from colorize_flow import BLEND_LCH_COLOR, PIXEL_FORMATS, UserError, pixel_format_name

# GIMP 2.10's enum names, with their 2.10 values as a fallback for an older gimpenums.
ADD_MASK_SELECTION = getattr(gimpfu, "ADD_MASK_SELECTION", getattr(gimpfu, "ADD_SELECTION_MASK", 4))
ADD_MASK_WHITE = getattr(gimpfu, "ADD_MASK_WHITE", getattr(gimpfu, "ADD_WHITE_MASK", 0))
FILL_TRANSPARENT = getattr(gimpfu, "FILL_TRANSPARENT", getattr(gimpfu, "TRANSPARENT_FILL", 3))
LAYER_MODE_NORMAL = getattr(gimpfu, "LAYER_MODE_NORMAL", 28)
LAYER_MODE_LCH_COLOR = getattr(gimpfu, "LAYER_MODE_LCH_COLOR", 26)
PARASITE_PERSISTENT = getattr(gimpfu, "PARASITE_PERSISTENT", 1)
PARASITE_UNDOABLE = getattr(gimpfu, "PARASITE_UNDOABLE", 2)
THUMBNAIL_FORMATS = {1: "gray8", 2: "graya8", 3: "rgb8", 4: "rgba8"}  # gimp-image-thumbnail's bpp


class Gimp2Host(colorize_flow.HostAdapter):
    def selection_rect(self, image, drawable):
        non_empty, x, y, width, height = pdb.gimp_drawable_mask_intersect(drawable)
        return (x, y, width, height) if non_empty else None

    def has_selection(self, image):
        return not pdb.gimp_selection_is_empty(image)

    def read_selection(self, image, rect):
        selection = pdb.gimp_image_get_selection(image)
        part = pixel_bytes.intersect(rect, (0, 0, image.width, image.height))
        if part is None:
            return bytes(bytearray(rect[2] * rect[3]))
        return pixel_bytes.place_in_rect(_region_bytes(selection, part), part, rect, 1)

    def read_pixels(self, image, drawable, rect):
        return _region_bytes(drawable, rect), pixel_format_name(drawable.is_gray, drawable.has_alpha, "8")

    def image_is_gray(self, image):
        return image.base_type == gimpfu.GRAY

    def convert_to_rgb(self, image):
        pdb.gimp_image_convert_rgb(image)

    def convert_to_gray(self, image):
        pdb.gimp_image_convert_grayscale(image)

    def add_layer(self, image, source, above, name, rect, pixels, pixel_format, blend, on_progress=None,
                  group=None):
        x, y, w, h = rect
        kind = gimpfu.RGBA_IMAGE if PIXEL_FORMATS[pixel_format].alpha else gimpfu.RGB_IMAGE
        mode = LAYER_MODE_LCH_COLOR if blend == BLEND_LCH_COLOR else LAYER_MODE_NORMAL
        layer = gimp.Layer(image, name, w, h, kind, 100.0, mode)
        _insert(image, layer, above, group)
        offset_x, offset_y = source.offsets
        layer.set_offsets(offset_x + x, offset_y + y)
        _write_in_strips(layer, w, h, pixels, PIXEL_FORMATS[pixel_format], on_progress)
        layer.flush()
        layer.update(0, 0, w, h)
        return layer

    def add_group(self, image, above, name):
        group = pdb.gimp_layer_group_new(image)
        pdb.gimp_item_set_name(group, name)
        _insert(image, group, above, None)
        return group

    def add_empty_layer(self, image, above, name, bounds):
        x, y, w, h = bounds
        layer = gimp.Layer(image, name, w, h, gimpfu.RGBA_IMAGE, 100.0, LAYER_MODE_NORMAL)
        _insert(image, layer, above, None)
        layer.set_offsets(x, y)
        pdb.gimp_drawable_fill(layer, FILL_TRANSPARENT)
        return layer

    def mask_to_selection(self, image, layer):
        layer.add_mask(layer.create_mask(ADD_MASK_SELECTION))

    def set_mask(self, image, layer, mask):
        channel = layer.create_mask(ADD_MASK_WHITE)
        layer.add_mask(channel)
        region = channel.get_pixel_rgn(0, 0, layer.width, layer.height, True, False)
        region[0:layer.width, 0:layer.height] = mask
        channel.flush()
        channel.update(0, 0, layer.width, layer.height)

    def set_visible(self, layer, visible):
        pdb.gimp_item_set_visible(layer, visible)

    def select_layer(self, image, layer):
        pdb.gimp_image_set_active_layer(image, layer)

    def all_layers(self, image):
        return list(_all_layers(image.layers))

    def layer_parent(self, layer):
        return pdb.gimp_item_get_parent(layer)

    def layer_below(self, image, layer):
        row = list(_siblings(image, layer))
        position = row.index(layer)
        return row[position + 1] if position + 1 < len(row) else None

    def is_group(self, layer):
        return bool(pdb.gimp_item_is_group(layer))

    def has_alpha(self, layer):
        return bool(layer.has_alpha)

    def layer_bounds(self, layer):
        return (layer.offsets[0], layer.offsets[1], layer.width, layer.height)

    def layer_name(self, layer):
        return layer.name

    def layer_tattoo(self, layer):
        return layer.tattoo

    def layer_by_tattoo(self, image, tattoo):
        if not isinstance(tattoo, int) or tattoo <= 0:
            return None
        return pdb.gimp_image_get_layer_by_tattoo(image, tattoo)

    def read_parasite(self, layer, name):
        parasite = layer.parasite_find(name)
        return None if parasite is None else parasite.data

    def write_parasite(self, layer, name, data):
        layer.attach_new_parasite(name, PARASITE_PERSISTENT | PARASITE_UNDOABLE, data)

    def image_name(self, image):
        return image.name

    def image_thumbnail(self, image, size):
        width, height, bpp, _, data = pdb.gimp_image_thumbnail(image, size, size)
        return bytes(bytearray(data)), width, height, THUMBNAIL_FORMATS[bpp]

    def load_image(self, path):
        try:
            return pdb.gimp_file_load(path, path)
        except RuntimeError as exc:  # gimp.error
            raise UserError("Cannot open the reference photo %s (%s). Choose an image file GIMP can open."
                            % (path, str(exc).rstrip(".")))

    def delete_image(self, image):
        pdb.gimp_image_delete(image)

    def undo_group_start(self, image):
        pdb.gimp_image_undo_group_start(image)

    def undo_group_end(self, image):
        pdb.gimp_image_undo_group_end(image)

    def progress_init(self, text):
        gimp.progress_init(text)

    def progress_update(self, fraction):
        gimp.progress_update(fraction)

    def progress_text(self, text):
        pdb.gimp_progress_set_text(text)

    def progress_pulse(self):
        pdb.gimp_progress_pulse()

    def progress_end(self):
        pdb.gimp_progress_end()


def _region_bytes(drawable, rect):
    x, y, w, h = rect
    return drawable.get_pixel_rgn(x, y, w, h, False, False)[x:x + w, y:y + h]


def _insert(image, item, above, group):
    """Directly above `above` in its group, or with `group` at the bottom of that group."""
    if group is not None:
        pdb.gimp_image_insert_layer(image, item, group, len(group.layers))
    else:
        position = pdb.gimp_image_get_item_position(image, above)  # within that layer's group
        pdb.gimp_image_insert_layer(image, item, pdb.gimp_item_get_parent(above), position)


def _siblings(image, layer):
    parent = pdb.gimp_item_get_parent(layer)
    return parent.layers if parent is not None else image.layers


def _all_layers(layers):
    for layer in layers:
        yield layer
        for child in _all_layers(getattr(layer, "layers", None) or []):  # layer groups
            yield child


def _write_in_strips(layer, width, height, pixels, pixel_format, on_progress, rows=256):
    """Fill the new layer a band of rows at a time, so the progress bar moves while GIMP takes the data."""
    row_bytes = width * (pixel_format.channels + (1 if pixel_format.alpha else 0)) * pixel_format.size
    region = layer.get_pixel_rgn(0, 0, width, height, True, False)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        region[0:width, top:bottom] = pixels[top * row_bytes:bottom * row_bytes]
        if on_progress is not None:
            on_progress(bottom / float(height))
