"""GIMP 2.10 adapter for colorize_flow (Python 2.7, gimpfu): pixel regions, pdb calls, gimp.progress_*.

GIMP 2.10 hands plug-ins that use pixel regions 8-bit gamma-encoded pixels whatever the image's
precision (the core converts), so this adapter always speaks the daemon's 8-bit formats; new layers
are created in the image's own precision and GIMP converts the 8-bit data on write.
"""

from __future__ import absolute_import, division, print_function

import gimpfu
from gimpfu import gimp, pdb

import colorize_flow
from colorize_flow import BLEND_LCH_COLOR, PIXEL_FORMATS, pixel_format_name

# GIMP 2.10's enum names, with their 2.10 values as a fallback for an older gimpenums.
ADD_MASK_SELECTION = getattr(gimpfu, "ADD_MASK_SELECTION", getattr(gimpfu, "ADD_SELECTION_MASK", 4))
LAYER_MODE_NORMAL = getattr(gimpfu, "LAYER_MODE_NORMAL", 28)
LAYER_MODE_LCH_COLOR = getattr(gimpfu, "LAYER_MODE_LCH_COLOR", 26)
PARASITE_PERSISTENT = getattr(gimpfu, "PARASITE_PERSISTENT", 1)
PARASITE_UNDOABLE = getattr(gimpfu, "PARASITE_UNDOABLE", 2)


class Gimp2Host(colorize_flow.HostAdapter):
    def selection_rect(self, image, drawable):
        non_empty, x, y, width, height = pdb.gimp_drawable_mask_intersect(drawable)
        return (x, y, width, height) if non_empty else None

    def has_selection(self, image):
        return not pdb.gimp_selection_is_empty(image)

    def read_pixels(self, image, drawable, rect):
        x, y, w, h = rect
        region = drawable.get_pixel_rgn(x, y, w, h, False, False)
        return region[x:x + w, y:y + h], pixel_format_name(drawable.is_gray, drawable.has_alpha, "8")

    def image_is_gray(self, image):
        return image.base_type == gimpfu.GRAY

    def convert_to_rgb(self, image):
        pdb.gimp_image_convert_rgb(image)

    def convert_to_gray(self, image):
        pdb.gimp_image_convert_grayscale(image)

    def add_layer(self, image, source, above, name, rect, pixels, pixel_format, blend, on_progress=None):
        x, y, w, h = rect
        kind = gimpfu.RGBA_IMAGE if PIXEL_FORMATS[pixel_format].alpha else gimpfu.RGB_IMAGE
        mode = LAYER_MODE_LCH_COLOR if blend == BLEND_LCH_COLOR else LAYER_MODE_NORMAL
        layer = gimp.Layer(image, name, w, h, kind, 100.0, mode)
        position = pdb.gimp_image_get_item_position(image, above)  # within that layer's group
        pdb.gimp_image_insert_layer(image, layer, pdb.gimp_item_get_parent(above), position)
        offset_x, offset_y = source.offsets
        layer.set_offsets(offset_x + x, offset_y + y)
        _write_in_strips(layer, w, h, pixels, PIXEL_FORMATS[pixel_format], on_progress)
        layer.flush()
        layer.update(0, 0, w, h)
        return layer

    def mask_to_selection(self, image, layer):
        layer.add_mask(layer.create_mask(ADD_MASK_SELECTION))

    def layer_names(self, image):
        return [layer.name for layer in _all_layers(image.layers)]

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
