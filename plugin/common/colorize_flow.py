"""The host-agnostic part of the colorize plug-ins: everything above one small adapter per GIMP version.

Runs on Python 2.7 and 3.x, standard library only (see gimp_colorize_client.py).

What a run does, in order:
 1. validate the settings, connect to the daemon (starting it when needed);
 2. read the source drawable inside the selection bounds (the whole drawable without a selection);
 3. submit the pixels, follow the job's progress, cancel the daemon job when the user cancels;
 4. in ONE undo group: convert a GRAY image to RGB, insert the result(s) as new layer(s) directly above
    the source, named after mode and model, in Normal mode ("rgb") or LCh Color mode ("color-layer").

Selections: the new layer covers only the selection's bounding box, and gets a layer mask made from
the selection, so outside the selection it is transparent and the image shows the untouched source.
The mask stays editable. The source drawable is only ever read.
Nothing touches the image before step 4, so any failure before it leaves the image exactly as it was.
"""

from __future__ import absolute_import, division, print_function

import os
import sys
import time
from collections import namedtuple

import gimp_colorize_client as client_lib
from gimp_colorize_client import ClientError

MODES = ("full", "instance", "diverse")
OUTPUTS = ("rgb", "color-layer")
MAX_SAMPLES = 8
BLEND_NORMAL = "normal"
BLEND_LCH_COLOR = "lch-color"

# Raw pixel formats of the daemon API (gray8 ... rgbaf32): colour channels, alpha or not, bytes per sample,
# depth suffix ('8', '16', 'f32').
PixelFormat = namedtuple("PixelFormat", "channels alpha size depth")
PIXEL_FORMATS = {}
for _depth, _size in (("8", 1), ("16", 2), ("f32", 4)):
    for _kind, _channels in (("gray", 1), ("rgb", 3)):
        PIXEL_FORMATS[_kind + _depth] = PixelFormat(_channels, False, _size, _depth)
        PIXEL_FORMATS[_kind + "a" + _depth] = PixelFormat(_channels, True, _size, _depth)


def pixel_format_name(gray, alpha, depth):
    return ("gray" if gray else "rgb") + ("a" if alpha else "") + depth


class UserError(ClientError):
    """Bad input the user can fix (settings, selection, drawable)."""

    code = "bad_input"


class Settings(object):
    """The procedure's arguments."""

    def __init__(self, mode="full", model="", temperature=None, output="rgb", samples=1, seed=None):
        self.mode = mode
        self.model = model or ""
        self.temperature = temperature
        self.output = output
        self.samples = samples
        self.seed = seed

    def validate(self):
        if self.mode not in MODES:
            raise UserError("Unknown mode '%s'; choose one of %s." % (self.mode, ", ".join(MODES)))
        if self.output not in OUTPUTS:
            raise UserError("Unknown output '%s'; choose one of %s." % (self.output, ", ".join(OUTPUTS)))
        if not 1 <= int(self.samples) <= MAX_SAMPLES:
            raise UserError("Samples must be between 1 and %d, not %s." % (MAX_SAMPLES, self.samples))
        if self.temperature and not 0.0 < float(self.temperature) <= 1.0:
            raise UserError("Vibrancy (temperature) must be between 0 and 1 (0: the model's default), not %s."
                            % self.temperature)

    def job_options(self):
        """Query parameters for POST /v1/jobs; None or empty values mean 'the daemon's default'."""
        return {
            "mode": self.mode,
            "model": self.model or None,
            "temperature": float(self.temperature) if self.temperature else None,  # 0: model default
            "samples": int(self.samples) if self.mode == "diverse" else None,
            "seed": self.seed,
        }


class HostAdapter(object):
    """The GIMP calls the flow needs. One subclass per GIMP version; tests use a fake.

    Rectangles are (x, y, width, height) in the drawable's own coordinates. Pixel data are byte strings
    in a daemon format (PIXEL_FORMATS): sRGB-encoded ("gamma"), row-major, native (little) endian.
    """

    def selection_rect(self, image, drawable):
        """Bounds of the selection inside the drawable (the whole drawable without a selection);
        None when the selection does not touch the drawable."""
        raise NotImplementedError

    def has_selection(self, image):
        raise NotImplementedError

    def read_pixels(self, image, drawable, rect):
        """(bytes, daemon format name) of the drawable inside rect, in the image's own precision."""
        raise NotImplementedError

    def image_is_gray(self, image):
        raise NotImplementedError

    def convert_to_rgb(self, image):
        raise NotImplementedError

    def add_layer(self, image, source, name, rect, pixels, pixel_format, blend):
        """Insert a new layer directly above `source`, covering `rect` of it, filled with `pixels`;
        blend is BLEND_NORMAL or BLEND_LCH_COLOR. Returns the layer."""
        raise NotImplementedError

    def mask_to_selection(self, image, layer):
        """Give `layer` a layer mask made from the image's selection."""
        raise NotImplementedError

    def undo_group_start(self, image):
        raise NotImplementedError

    def undo_group_end(self, image):
        raise NotImplementedError

    def progress_init(self, text):
        raise NotImplementedError

    def progress_update(self, fraction):
        raise NotImplementedError

    def progress_text(self, text):
        """Replace the progress bar's text (the daemon's current stage)."""

    def progress_end(self):
        pass

    def is_cancelled(self):
        """True once the user asked to stop (hosts that cannot tell return False)."""
        return False


class FlowResult(object):
    def __init__(self, layers, model, timings, clipped_pixels=None):
        self.layers = layers
        self.model = model
        self.timings = timings  # seconds: read, upload, daemon, download, convert (gray -> RGB), write
        self.clipped_pixels = clipped_pixels  # as reported by the daemon: lightness moved by gamut clipping

    @property
    def plugin_seconds(self):
        """Time spent on the plug-in's side: everything but waiting for the daemon to compute."""
        return sum(value for key, value in self.timings.items() if key != "daemon")


def colorize(host, image, drawable, settings, connect=client_lib.connect):
    """Run one colorize operation; returns a FlowResult or raises ClientError with a user message."""
    settings.validate()
    host.progress_init("Colorize: connecting to the daemon")
    try:
        client = connect()
        result = _run(host, client, image, drawable, settings)
    finally:
        host.progress_end()
    _report_timings(result)
    return result


def _run(host, client, image, drawable, settings):
    timings = {}
    rect = host.selection_rect(image, drawable)
    if rect is None:
        raise UserError("The selection does not overlap the active layer; select part of it, or nothing.")
    started = time.time()
    pixels, pixel_format = host.read_pixels(image, drawable, rect)
    colour, colour_format, alpha = split_alpha(pixels, pixel_format)
    timings["read"] = _lap(started)

    status, outputs = _run_job(host, client, colour, colour_format, rect, settings, timings)
    host.progress_update(0.95)

    model = _model_name(status, settings)
    started = time.time()
    layers = _insert_layers(host, image, drawable, rect, outputs, alpha, settings, model, timings)
    timings["write"] = _lap(started) - timings["convert"]
    host.progress_update(1.0)
    return FlowResult(layers, model, timings, status.get("clipped_pixels"))


def _run_job(host, client, pixels, pixel_format, rect, settings, timings):
    """Submit, follow and download one daemon job -> (final status, [(bytes, format) per layer])."""
    started = time.time()
    job_id = client.submit(pixels, rect[2], rect[3], pixel_format, settings.job_options())
    timings["upload"] = _lap(started)
    host.progress_update(0.05)
    guard = client_lib.guard_job(client, job_id)  # cancels the job if GIMP kills us (the user's Cancel)
    try:
        started = time.time()
        status = client_lib.wait_for_job(client, job_id, progress=_progress_reporter(host),
                                         is_cancelled=host.is_cancelled, timeout=client.config.job_timeout)
        timings["daemon"] = _lap(started)
        started = time.time()
        outputs = [_download(client, job_id, layer, rect) for layer in status.get("layers") or []]
        timings["download"] = _lap(started)
    finally:
        if guard is not None:
            guard.release()
    if not outputs:
        raise client_lib.JobFailed("The daemon finished the job without producing a layer; see its log %s."
                                   % client.config.log_file)
    return status, outputs


def _model_name(status, settings):
    """The model that ran: the job's `model` when the daemon reports it, else the one named in its first
    layer's name ("Colorized (NAME)"), else the requested one."""
    if status.get("model"):
        return status["model"]
    first = (status.get("layers") or [{}])[0].get("name") or ""
    if "(" in first and ")" in first.split("(", 1)[1]:
        return first.split("(", 1)[1].split(")", 1)[0]
    return settings.model or "default"


def _lap(started):
    return time.time() - started


def _progress_reporter(host):
    shown = []

    def report(stage, fraction):
        if stage and stage not in shown[-1:]:
            shown.append(stage)
            host.progress_text("Colorize: %s" % stage)
        host.progress_update(0.05 + 0.85 * max(0.0, min(1.0, fraction)))
    return report


def _download(client, job_id, layer, rect):
    """(bytes, format) of one result layer, checked against the expected size."""
    pixel_format = layer.get("format")
    if pixel_format not in PIXEL_FORMATS or layer.get("width") != rect[2] or layer.get("height") != rect[3]:
        raise client_lib.JobFailed("The daemon returned an unexpected layer (%s, %sx%s). Update gimp-colorize so "
                                   "the plug-in and the daemon match." % (pixel_format, layer.get("width"),
                                                                           layer.get("height")))
    data = client.download_layer(job_id, layer.get("index", 0))
    if len(data) != expected_size(pixel_format, rect[2], rect[3]):
        raise client_lib.JobFailed("The daemon sent %d bytes for a %dx%d %s layer; see its log %s."
                                   % (len(data), rect[2], rect[3], pixel_format, client.config.log_file))
    return data, pixel_format


def _insert_layers(host, image, source, rect, outputs, alpha, settings, model, timings):
    """The only step that changes the image: one undo group."""
    blend = BLEND_LCH_COLOR if settings.output == "color-layer" else BLEND_NORMAL
    masked = host.has_selection(image)
    layers = []
    host.undo_group_start(image)
    try:
        started = time.time()
        if host.image_is_gray(image):
            host.convert_to_rgb(image)  # an RGB layer in a GRAY image would silently turn gray
        timings["convert"] = _lap(started)
        # Each layer goes directly above the source, pushing earlier ones up: #1 ends on top.
        for index in range(len(outputs)):
            pixels, pixel_format = outputs[index]
            if alpha is not None:
                pixels, pixel_format = join_alpha(pixels, pixel_format, alpha)
            name = layer_name(settings, model, index, len(outputs))
            layer = host.add_layer(image, source, name, rect, pixels, pixel_format, blend)
            if masked:
                host.mask_to_selection(image, layer)
            layers.insert(0, layer)
    finally:
        host.undo_group_end(image)
    return layers


def layer_name(settings, model, index, count):
    label = "output %s" % settings.output if settings.output != "rgb" else ""
    name = "Colorized %s (%s%s)" % (settings.mode, model, ", " + label if label else "")
    if count > 1:
        name += " #%d" % (index + 1)
    return name


def _report_timings(result):
    """With GIMP_COLORIZE_TIMINGS set, print where the time went (benchmarks and the end-to-end test)."""
    if not os.environ.get("GIMP_COLORIZE_TIMINGS"):
        return
    parts = " ".join("%s=%.3f" % item for item in sorted(result.timings.items()))
    sys.stderr.write("gimp-colorize timings: %s plugin_side=%.3f\n" % (parts, result.plugin_seconds))
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------------
# Pixel byte strings. Extended-slice copies run in C, so a 12 MP image takes milliseconds, not a loop.


def expected_size(pixel_format, width, height):
    channels, alpha, size, _ = PIXEL_FORMATS[pixel_format]
    return width * height * (channels + (1 if alpha else 0)) * size


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
    """Interleave an RGB byte string with an alpha plane of the same depth -> (bytes, rgba format)."""
    channels, _, size, depth = PIXEL_FORMATS[pixel_format]
    if len(alpha) // size != len(rgb) // (channels * size):
        raise client_lib.JobFailed("The daemon returned a layer whose depth differs from the image's (%s); "
                                   "update gimp-colorize." % pixel_format)
    stride = (channels + 1) * size
    out = bytearray(len(alpha) // size * stride)
    for byte in range(channels * size):
        out[byte::stride] = rgb[byte::channels * size]
    for byte in range(size):
        out[channels * size + byte::stride] = alpha[byte::size]
    return bytes(out), pixel_format_name(channels == 1, True, depth)
