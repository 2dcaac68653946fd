# Helpers for batch code run inside gimp-console-3.0 by tests/gimp3/harness.py (python-fu-eval).
# This runs under the root's Python 3 with only GIMP's bindings: standard library + gi, no numpy.
import json
import os
import sys
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio, GLib  # noqa: E402

FACTS_PREFIX = "GC-FACTS "
PROCEDURE = "plug-in-gimp-colorize"
DUMP_FORMATS = {8: "R'G'B'A u8", 16: "R'G'B'A u16", 32: "R'G'B'A float"}


def emit(facts):
    print(FACTS_PREFIX + json.dumps(facts), flush=True)


def load_image(path):
    return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))


def bits_per_channel(image):
    name = image.get_precision().value_nick  # e.g. "u8-non-linear", "u16-non-linear", "float-linear"
    if name.startswith("u8"):
        return 8
    if name.startswith("u16"):
        return 16
    return 32


def write_atomically(path, data):
    partial = path + ".partial"
    with open(partial, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)


def dump_layer(layer, path, bits):
    """Write the layer's pixels as gamma-encoded RGBA of `bits` per channel; return its description."""
    width, height = layer.get_width(), layer.get_height()
    rect = Gegl.Rectangle.new(0, 0, width, height)
    fmt = DUMP_FORMATS[bits]
    write_atomically(path, bytes(layer.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE)))
    return {"file": path, "format": fmt, "bits": bits, "width": width, "height": height}


RESULT_PARASITE = "gimp-colorize-result"


def result_record(layer):
    parasite = layer.get_parasite(RESULT_PARASITE)
    if parasite is None:
        return None
    return {"flags": parasite.get_flags(), "data": json.loads(bytes(bytearray(parasite.get_data())).decode("utf-8"))}


def describe_layer(layer):
    offsets = layer.get_offsets()
    return {
        "record": result_record(layer),
        "tattoo": layer.get_tattoo(),
        "id": layer.get_id(),
        "name": layer.get_name(),
        "mode": layer.get_mode().value_nick,
        "opacity": layer.get_opacity(),
        "visible": layer.get_visible(),
        "offsets": [offsets[1], offsets[2]] if len(offsets) == 3 else list(offsets),
        "has_alpha": layer.has_alpha(),
    }


def layer_stack(image):
    """Layers top to bottom."""
    return [describe_layer(layer) for layer in image.get_layers()]


def colorize(image, drawable, arguments):
    """Call the plug-in non-interactively; return (status nick, error message, seconds)."""
    procedure = Gimp.get_pdb().lookup_procedure(PROCEDURE)
    if procedure is None:
        return "not-found", "procedure %s is not registered" % PROCEDURE, 0.0
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [drawable])
    for key, value in arguments.items():
        config.set_property(key, value)
    started = time.monotonic()
    result = procedure.run(config)
    seconds = time.monotonic() - started
    status = result.index(0)
    message = ""
    if result.length() > 1 and isinstance(result.index(1), str):
        message = result.index(1)
    return status.value_nick, message, seconds


def failure_facts(case_id):
    return {"case": case_id, "exception": traceback.format_exc()}
