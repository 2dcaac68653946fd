"""GIMP 3.0 adapter for colorize_flow: the only module of the GIMP 3 plug-in that touches pixels and layers.

Pixels move through GEGL buffers in gamma-encoded ("R'G'B'", "Y'") formats at the image's own
precision: 8-bit images as u8, 16-bit as u16, everything deeper (32-bit integer, half, float, double)
as 32-bit float. The daemon expects sRGB-encoded values, which is what these formats give.
"""

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio, GLib  # noqa: E402

import colorize_flow  # noqa: E402
from colorize_flow import BLEND_LCH_COLOR, PIXEL_FORMATS, UserError, pixel_format_name  # noqa: E402

_U8 = ("U8_LINEAR", "U8_NON_LINEAR", "U8_PERCEPTUAL")
_U16 = ("U16_LINEAR", "U16_NON_LINEAR", "U16_PERCEPTUAL")
# daemon depth suffix -> babl component type
_BABL_TYPES = {"8": "u8", "16": "u16", "f32": "float"}
WRITE_ROWS = 512  # a multiple of GEGL's tile height (64 for plug-ins)
MASK_FORMAT = "Y u8"  # how GIMP stores masks and selections: coverage, linear
THUMBNAIL_FORMATS = {1: "gray8", 2: "graya8", 3: "rgb8", 4: "rgba8"}  # get_thumbnail_data's bpp


def depth_of(image):
    """The daemon's depth suffix for an image precision: '8', '16' or 'f32'."""
    precision = image.get_precision()
    if precision in [getattr(Gimp.Precision, name) for name in _U8]:
        return "8"
    if precision in [getattr(Gimp.Precision, name) for name in _U16]:
        return "16"
    return "f32"


def babl_format(pixel_format):
    """'graya16' -> "Y'A u16", 'rgbf32' -> "R'G'B' float"."""
    channels, alpha, _, depth = PIXEL_FORMATS[pixel_format]
    model = "Y'" if channels == 1 else "R'G'B'"
    return "%s%s %s" % (model, "A" if alpha else "", _BABL_TYPES[depth])


def _last(values, count):
    """PyGObject returns (ok, out1, out2, ...) for C functions with a gboolean result and out arguments."""
    values = tuple(values)
    return values[len(values) - count:]


class Gimp3Host(colorize_flow.HostAdapter):
    def selection_rect(self, image, drawable):
        result = tuple(drawable.mask_intersect())
        if not result[0]:
            return None
        return tuple(int(v) for v in _last(result, 4))

    def has_selection(self, image):
        return not Gimp.Selection.is_empty(image)

    def read_selection(self, image, rect):
        # AbyssPolicy.NONE: zeros (not selected) where the rectangle leaves the image
        data = image.get_selection().get_buffer().get(Gegl.Rectangle.new(*rect), 1.0, MASK_FORMAT,
                                                       Gegl.AbyssPolicy.NONE)
        return bytes(data)

    def read_pixels(self, image, drawable, rect):
        pixel_format = pixel_format_name(drawable.is_gray(), drawable.has_alpha(), depth_of(image))
        x, y, w, h = rect
        data = drawable.get_buffer().get(Gegl.Rectangle.new(x, y, w, h), 1.0, babl_format(pixel_format),
                                         Gegl.AbyssPolicy.NONE)
        return bytes(data), pixel_format

    def read_rgba8(self, image, drawable, rect):
        data = drawable.get_buffer().get(Gegl.Rectangle.new(*rect), 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.NONE)
        return bytes(data)

    def image_is_gray(self, image):
        return image.get_base_type() == Gimp.ImageBaseType.GRAY

    def convert_to_rgb(self, image):
        self.profile = image.get_color_profile()
        image.convert_rgb()

    def convert_to_gray(self, image):
        image.convert_grayscale()
        if getattr(self, "profile", None) is not None:
            image.set_color_profile(self.profile)  # the gray profile the image had

    def add_layer(self, image, source, above, name, rect, pixels, pixel_format, blend, on_progress=None,
                  group=None):
        x, y, w, h = rect
        kind = Gimp.ImageType.RGBA_IMAGE if PIXEL_FORMATS[pixel_format].alpha else Gimp.ImageType.RGB_IMAGE
        mode = Gimp.LayerMode.LCH_COLOR if blend == BLEND_LCH_COLOR else Gimp.LayerMode.NORMAL
        layer = Gimp.Layer.new(image, name, w, h, kind, 100.0, mode)
        _insert(image, layer, above, group)
        offset_x, offset_y = _last(source.get_offsets(), 2)
        layer.set_offsets(offset_x + x, offset_y + y)
        write_pixels(layer, w, h, pixels, pixel_format, on_progress)
        layer.update(0, 0, w, h)
        return layer

    def add_group(self, image, above, name):
        group = Gimp.GroupLayer.new(image, name)
        _insert(image, group, above, None)
        return group

    def add_empty_layer(self, image, above, name, bounds):
        x, y, w, h = bounds
        layer = Gimp.Layer.new(image, name, w, h, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
        _insert(image, layer, above, None)
        layer.set_offsets(x, y)
        layer.fill(Gimp.FillType.TRANSPARENT)
        return layer

    def mask_to_selection(self, image, layer):
        layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))

    def set_mask(self, image, layer, mask):
        channel = layer.create_mask(Gimp.AddMaskType.WHITE)
        layer.add_mask(channel)
        width, height = layer.get_width(), layer.get_height()
        buffer = channel.get_buffer()
        buffer.set(Gegl.Rectangle.new(0, 0, width, height), MASK_FORMAT, mask)
        buffer.flush()
        channel.update(0, 0, width, height)

    def set_visible(self, layer, visible):
        layer.set_visible(visible)

    def select_layer(self, image, layer):
        image.set_selected_layers([layer])

    def all_layers(self, image):
        return list(_all_layers(image.get_layers()))

    def layer_parent(self, layer):
        return layer.get_parent()

    def layer_below(self, image, layer):
        parent = layer.get_parent()
        row = parent.get_children() if parent is not None else image.get_layers()
        ids = [item.get_id() for item in row]
        position = ids.index(layer.get_id())
        return row[position + 1] if position + 1 < len(row) else None

    def is_group(self, layer):
        return layer.is_group()

    def has_alpha(self, layer):
        return layer.has_alpha()

    def same_layer(self, first, second):
        return first is not None and second is not None and first.get_id() == second.get_id()

    def layer_bounds(self, layer):
        offset_x, offset_y = _last(layer.get_offsets(), 2)
        return (offset_x, offset_y, layer.get_width(), layer.get_height())

    def layer_name(self, layer):
        return layer.get_name()

    def layer_tattoo(self, layer):
        return layer.get_tattoo()

    def layer_by_tattoo(self, image, tattoo):
        if not isinstance(tattoo, int) or isinstance(tattoo, bool) or tattoo <= 0:
            return None
        return image.get_layer_by_tattoo(tattoo)

    def read_parasite(self, layer, name):
        parasite = layer.get_parasite(name)
        return None if parasite is None else bytes(bytearray(parasite.get_data()))

    def write_parasite(self, layer, name, data):
        flags = Gimp.PARASITE_PERSISTENT | Gimp.PARASITE_UNDOABLE  # saved in XCF, undone with the layer
        layer.attach_parasite(Gimp.Parasite.new(name, flags, list(bytearray(data))))

    def image_name(self, image):
        return image.get_name()

    def image_thumbnail(self, image, size):
        data, width, height, bpp = image.get_thumbnail_data(size, size)
        return bytes(data.get_data()), width, height, THUMBNAIL_FORMATS[bpp]

    def load_image(self, path):
        problem = None
        try:
            image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
        except GLib.Error as exc:
            image, problem = None, exc.message
        if image is None:
            problem = problem or Gimp.get_pdb().get_last_error() or "GIMP could not read it"
            raise UserError("Cannot open the reference photo %s (%s). Choose an image file GIMP can open."
                            % (path, problem.rstrip(".")))
        return image

    def delete_image(self, image):
        image.delete()

    def undo_group_start(self, image):
        image.undo_group_start()

    def undo_group_end(self, image):
        image.undo_group_end()

    def progress_init(self, text):
        Gimp.progress_init(text)

    def progress_update(self, fraction):
        Gimp.progress_update(fraction)

    def progress_text(self, text):
        Gimp.progress_set_text(text)

    def progress_pulse(self):
        Gimp.progress_pulse()

    def progress_end(self):
        Gimp.progress_end()


def _insert(image, item, above, group):
    """Directly above `above` in its group, or with `group` at the bottom of that group."""
    if group is not None:
        image.insert_layer(item, group, len(group.get_children()))
    else:
        image.insert_layer(item, above.get_parent(), image.get_item_position(above))


def _all_layers(layers):
    for layer in layers:
        yield layer
        if layer.is_group():
            for child in _all_layers(layer.get_children()):
                yield child


def write_pixels(layer, width, height, pixels, pixel_format, on_progress=None, rows=WRITE_ROWS):
    """Fill the new layer a band of rows at a time: the progress bar moves while GIMP takes the data."""
    buffer = layer.get_buffer()
    fmt = babl_format(pixel_format)
    row_bytes = len(pixels) // height
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        buffer.set(Gegl.Rectangle.new(0, top, width, bottom - top), fmt, pixels[top * row_bytes:bottom * row_bytes])
        if on_progress is not None:
            on_progress(bottom / float(height))
    buffer.flush()
