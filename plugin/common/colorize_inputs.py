"""What a run sends besides the photo, and which layer is the photo.

Runs on Python 2.7 and 3.x, standard library only, above colorize_flow.HostAdapter:
- layers this plug-in made carry a parasite: results (`gimp-colorize-result`) and colour hints layers
  (`gimp-colorize-hints`); `source_of` finds the photo behind either, so neither is ever colorized itself;
- colour hints: a transparent RGBA layer the user paints dots on (Filters > Colorize > Add Color Hints
  Layer makes one), read over the source's rectangle and sent as an RGBA image (`hints=`);
- a reference photo: an open image's visible colours (its thumbnail: GIMP's own flattened projection, read
  without touching the image) or a file, sent as RGB (`reference=`);
- in instance mode, the selection as a gray mask whose separate regions are the objects (`selection=`).
"""

from __future__ import absolute_import, division, print_function

import json

import gimp_colorize_client as client_lib
import pixel_bytes
from gimp_colorize_client import UserError

TITLE = "Colorize Photo (AI)"
RESULT_PARASITE = "gimp-colorize-result"  # on every layer (and group) this plug-in makes: what it was made from
HINTS_PARASITE = "gimp-colorize-hints"  # on a colour hints layer: the layer it was made for
HINTS_LAYER_NAME = "Color hints"
HINTS_CHOICES = ("auto", "none", "layer")  # auto: the image's hints layer, if it has one
REFERENCE_CHOICES = ("none", "image", "file")
REFERENCE_SIDE = 256  # the daemon shrinks a reference to 64 pixels; a thumbnail of this size is plenty
HOW_TO_HINT = ("Filters > Colorize > Add Color Hints Layer adds one above the photo: paint dots in the colors you want "
               "on it (a gray dot keeps a place neutral)")


# ---------------------------------------------------------------------------------------------------
# Records: the JSON parasites on layers this plug-in made


def read_record(host, layer, name):
    """The JSON object in the layer's parasite `name`, or None (no parasite, or not ours)."""
    data = host.read_parasite(layer, name)
    if not data:
        return None
    try:
        record = json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except (ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def write_record(host, layer, name, record):
    host.write_parasite(layer, name, json.dumps(record, sort_keys=True).encode("utf-8"))


def result_record(host, layer):
    return read_record(host, layer, RESULT_PARASITE)


def hints_record(host, layer):
    return read_record(host, layer, HINTS_PARASITE)


def unique_name(name, taken):
    """`name`, or `name (2)`, `name (3)`, ...: GIMP would append "#1" to a duplicate by itself."""
    if name not in taken:
        return name
    number = 2
    while "%s (%d)" % (name, number) in taken:
        number += 1
    return "%s (%d)" % (name, number)


# ---------------------------------------------------------------------------------------------------
# Which layer is the photo, and where the new layers go


def source_of(host, image, drawable):
    """(the layer to read, the layer or group the new ones go directly above).

    A layer or group this plug-in made stands for the layer it was made from (Filters > Repeat on a fresh
    result colorizes the photo again, not its colors), and the new ones go above the whole result; a colour
    hints layer stands for its photo too, and the result goes directly under the hints, which stay on top
    (and over any older result, which would hide it)."""
    record = result_record(host, drawable)
    if record is not None:
        source = _recorded_source(host, image, drawable, record)
        return source, outermost_result(host, drawable)
    if hints_record(host, drawable) is not None:
        source = photo_under_hints(host, image, drawable)
        return source, host.layer_below(image, drawable) or source  # directly under the hints, over older results
    if host.is_group(drawable):
        raise UserError("The selected layer \"%s\" is a layer group. Select the black-and-white layer inside it, "
                        "then run %s again." % (host.layer_name(drawable), TITLE))
    return drawable, drawable


def _recorded_source(host, image, drawable, record):
    source = host.layer_by_tattoo(image, record.get("source_tattoo"))
    if source is None or made_here(host, source):
        raise UserError("The selected layer \"%s\" was made by %s from a layer that is no longer in the image. "
                        "Select the black-and-white layer, then run the filter again."
                        % (host.layer_name(drawable), TITLE))
    return source


def made_here(host, layer):
    """A result or a hints layer: never a photo to colorize."""
    return result_record(host, layer) is not None or hints_record(host, layer) is not None


def outermost_result(host, layer):
    """The layer, or the outermost result group around it (a diverse sample's group): new layers go above it."""
    found = layer
    parent = host.layer_parent(layer)
    while parent is not None and result_record(host, parent) is not None:
        found = parent
        parent = host.layer_parent(parent)
    return found


def photo_under_hints(host, image, hints):
    """The layer a hints layer was made for, else the layer under it; a sentence when neither is a photo."""
    record = hints_record(host, hints) or {}
    source = host.layer_by_tattoo(image, record.get("source_tattoo"))
    if source is None or made_here(host, source) or host.is_group(source):
        source = host.layer_below(image, hints)
    if source is None or made_here(host, source) or host.is_group(source):
        raise UserError("The selected layer \"%s\" holds color hints, not a photo. Select the black-and-white layer "
                        "under it, then run %s again." % (host.layer_name(hints), TITLE))
    return source


# ---------------------------------------------------------------------------------------------------
# Colour hints


def hints_layer_for(host, image, source, settings):
    """The layer whose paint is the colour hints for `source`, or None."""
    if settings.hints == "none":
        return None
    if settings.hints == "layer":
        return checked_hints_layer(host, source, settings.hints_layer)
    marked = [layer for layer in host.all_layers(image) if hints_record(host, layer) is not None]
    for layer in marked:
        if hints_record(host, layer).get("source_tattoo") == host.layer_tattoo(source):
            return layer
    return marked[0] if marked else None


def checked_hints_layer(host, source, layer):
    if layer is None:
        raise UserError("Color hints is set to a layer, but no layer was chosen. Choose the layer you painted the "
                        "color dots on, or None. %s." % HOW_TO_HINT)
    name = host.layer_name(layer)
    if host.same_layer(layer, source):
        raise UserError("The layer \"%s\" is the photo being colorized, so it cannot hold its color hints too. "
                        "%s." % (name, HOW_TO_HINT))
    if result_record(host, layer) is not None or host.is_group(layer):
        raise UserError("The layer \"%s\" is a result of %s, not color hints. Choose the layer you painted the "
                        "color dots on, or None." % (name, TITLE))
    if not host.has_alpha(layer):
        raise UserError("The layer \"%s\" has no transparency, so all of it would count as color hints. Choose a "
                        "layer with color dots on transparency. %s." % (name, HOW_TO_HINT))
    return layer


def read_hints(host, image, layer, source, rect):
    """RGBA 8-bit hints over `rect` of the source (transparent where the hints layer does not reach), or None
    when nothing is painted there."""
    wanted = in_image(host, source, rect)
    bounds = host.layer_bounds(layer)
    part = pixel_bytes.intersect(wanted, bounds)
    if part is None:
        return None
    local = (part[0] - bounds[0], part[1] - bounds[1], part[2], part[3])
    rgba = pixel_bytes.place_in_rect(host.read_rgba8(image, layer, local), part, wanted, 4)
    return None if pixel_bytes.alpha_is_empty(rgba) else rgba


def in_image(host, layer, rect):
    """A rectangle of the layer's own coordinates in the image's."""
    x, y = host.layer_bounds(layer)[:2]
    return (x + rect[0], y + rect[1], rect[2], rect[3])


def add_hints_layer(host, image, drawable):
    """Filters > Colorize > Add Color Hints Layer: a transparent layer over the photo to paint colour dots on.
    One undo step; a GRAY image becomes RGB (colours cannot be painted on gray). -> the new layer."""
    if hints_record(host, drawable) is not None:
        raise UserError("The selected layer \"%s\" already holds color hints: paint on it with any brush, then run "
                        "%s." % (host.layer_name(drawable), TITLE))
    source, above = source_of(host, image, drawable)
    if result_record(host, drawable) is not None:
        above = outermost_result(host, drawable)  # over the result, where the dots stay visible
    name = unique_name(HINTS_LAYER_NAME, set(host.layer_names(image)))
    host.undo_group_start(image)
    try:
        if host.image_is_gray(image):
            host.convert_to_rgb(image)
        layer = host.add_empty_layer(image, above, name, host.layer_bounds(source))
        write_record(host, layer, HINTS_PARASITE, {"format": 1, "source_tattoo": host.layer_tattoo(source),
                                                   "source_name": host.layer_name(source)})
        host.select_layer(image, layer)
    finally:
        host.undo_group_end(image)
    return layer


# ---------------------------------------------------------------------------------------------------
# Reference photo


class Reference(object):
    def __init__(self, pixels, width, height, label, description):
        self.pixels, self.width, self.height = pixels, width, height  # rgb8
        self.label = label  # what the result's record says it was: "image: NAME" or "file: PATH"
        self.description = description  # the same for a sentence


def reference_for(host, settings):
    """The reference photo's colours, or None; a sentence when the one asked for cannot be read."""
    if settings.reference == "none":
        return None
    if settings.reference == "image":
        if settings.reference_image is None:
            raise UserError("Reference photo is set to an open image, but none was chosen. Choose the image whose "
                            "colors to follow, or None.")
        name = host.image_name(settings.reference_image)
        return _thumbnail_of(host, settings.reference_image, "image: %s" % name, "the open image \"%s\"" % name)
    if not settings.reference_file:
        raise UserError("Reference photo is set to a file, but no file was chosen. Choose the photo whose colors "
                        "to follow, or None.")
    loaded = host.load_image(settings.reference_file)
    try:
        return _thumbnail_of(host, loaded, "file: %s" % settings.reference_file, "the file %s" % settings.reference_file)
    finally:
        host.delete_image(loaded)


def _thumbnail_of(host, image, label, description):
    """GIMP's thumbnail is the image's visible layers merged, made without changing the image."""
    data, width, height, pixel_format = host.image_thumbnail(image, REFERENCE_SIDE)
    return Reference(pixel_bytes.to_rgb8(data, pixel_format), width, height, label, description)


# ---------------------------------------------------------------------------------------------------
# Uploads


def upload(client, pixels, width, height, pixel_format, on_busy=None):
    """POST /v1/inputs, waiting while the daemon has too many uploads at once; -> the input's id."""
    return client_lib.when_free(client, lambda: client.upload_input(pixels, width, height, pixel_format),
                                timeout=client.config.job_timeout, on_busy=on_busy)
