"""The host-agnostic part of the colorize plug-ins: everything above one small adapter per GIMP version.

Runs on Python 2.7 and 3.x, standard library only (see gimp_colorize_client.py).

What a run does, in order:
 1. validate the settings; for a layer this plug-in made (its parasite), take the layer it was made from;
    connect to the daemon (starting it when needed);
 2. read the source inside the selection bounds (the whole layer without a selection);
 3. submit the pixels (waiting while the daemon's queue is full), follow the job's progress, cancel the
    daemon job when the user cancels;
 4. in ONE undo group: convert a GRAY image to RGB while the result downloads, insert the result(s) as new
    layer(s) directly above the selected layer, with unique names and a parasite saying how they were
    made, in Normal mode ("rgb") or LCh Color mode ("color-layer").

Selections: the new layer covers only the selection's bounding box, and gets a layer mask made from
the selection, so outside the selection it is transparent and the image shows the untouched source.
The mask stays editable. The source drawable is only ever read.
Nothing touches the image before step 4, so any failure before it leaves the image exactly as it was.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import sys
import threading
import time
from collections import namedtuple

import gimp_colorize_client as client_lib
from gimp_colorize_client import ClientError

MODES = ("full", "instance", "diverse")
OUTPUTS = ("rgb", "color-layer")
MAX_SAMPLES = 8
VIBRANCY_MIN, VIBRANCY_MAX, DEFAULT_VIBRANCY = 0.0, 2.0, 1.0
DEFAULT_MODEL = "default"  # the mode's default model (so is an empty name, for scripts)
BLEND_NORMAL = "normal"
BLEND_LCH_COLOR = "lch-color"
RESULT_PARASITE = "gimp-colorize-result"  # on every layer this plug-in makes: what it was made from, and how

# What the user reads (GIMP's interface is in US English). Both plug-ins build their menus from these.
TITLE = "Colorize Photo (AI)"
DESCRIPTION = ("Adds natural colors to a black-and-white photo as a new layer above it, using an AI model that "
               "runs on this computer. The photo's own layer is not changed.")
MODE_LABELS = {"full": "Whole photo", "instance": "Object by object", "diverse": "Several variants"}
MODE_HELP = {"full": "one model colors the whole photo",
             "instance": "objects are found and colored one by one, then blended with the whole-photo colors",
             "diverse": "several plausible colorings, one layer each"}
OUTPUT_LABELS = {"rgb": "Normal layer", "color-layer": "Color-only layer (LCh Color mode)"}
NOT_INSTALLED = "no model installed"

# Progress: what each step of the plug-in and each stage the daemon reports is called, and where the bar is.
STEP_TEXTS = {
    "connecting": "connecting to the colorization service",
    "starting-service": "starting the colorization service (first run takes a few seconds)",
    "reading": "reading the layer",
    "sending": "sending the photo to the colorization service",
    "queued": "waiting for the daemon",
    "starting": "loading the model",
    "preprocess": "preparing the photo",
    "inference": "colorizing",
    "upsample_recombine": "applying the colors at full size",
    "detecting": "finding the objects",
    "instances": "coloring the objects one by one",
    "fusing": "blending the objects into the photo",
    "sampling": "making the variants",
    "receiving": "receiving the result",
    "converting": "converting the image to RGB",
    "writing": "adding the new layer",
}
GENERIC_STAGE_TEXT = "colorizing"
AT_SENT, AT_COMPUTED, AT_RECEIVED, AT_CONVERTED, AT_WRITTEN = 0.05, 0.85, 0.88, 0.92, 0.99  # 1.0: all done

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

    def __init__(self, mode="full", model="", vibrancy=DEFAULT_VIBRANCY, output="rgb", samples=1, seed=None):
        self.mode = mode
        self.model = model or ""
        self.vibrancy = DEFAULT_VIBRANCY if vibrancy is None else vibrancy
        self.output = output
        self.samples = samples
        self.seed = seed

    @property
    def model_name(self):
        """The model asked for by name, or None for the mode's default."""
        return None if self.model in ("", DEFAULT_MODEL) else self.model

    def validate(self):
        if self.mode not in MODES:
            raise UserError("Unknown mode '%s'. Choose one of %s." % (self.mode, ", ".join(MODES)))
        if self.output not in OUTPUTS:
            raise UserError("Unknown output '%s'. Choose one of %s." % (self.output, ", ".join(OUTPUTS)))
        if not 1 <= int(self.samples) <= MAX_SAMPLES:
            raise UserError("Samples must be between 1 and %d, not %s." % (MAX_SAMPLES, self.samples))
        if not VIBRANCY_MIN <= float(self.vibrancy) <= VIBRANCY_MAX:
            raise UserError("Vibrancy must be between %g (gray) and %g (twice as vivid), not %s; %g keeps the "
                            "model's own colors." % (VIBRANCY_MIN, VIBRANCY_MAX, self.vibrancy, DEFAULT_VIBRANCY))

    def job_options(self):
        """Query parameters for POST /v1/jobs; None values mean 'the daemon's default'."""
        return {
            "mode": self.mode,
            "model": self.model_name,
            "vibrancy": round(float(self.vibrancy), 3),
            "samples": int(self.samples) if self.mode == "diverse" else None,
            "seed": self.seed,
        }

    def record(self):
        """What a result layer remembers about how it was made (with the model that ran)."""
        return {"mode": self.mode, "model": self.model or DEFAULT_MODEL, "vibrancy": round(float(self.vibrancy), 3),
                "output": self.output, "samples": int(self.samples) if self.mode == "diverse" else 1,
                "seed": self.seed}


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

    def convert_to_gray(self, image):
        """Undo convert_to_rgb (only when the result could not be fetched after all)."""
        raise NotImplementedError

    def add_layer(self, image, source, above, name, rect, pixels, pixel_format, blend, on_progress=None):
        """Insert a new layer directly above `above` (in its layer group), at `rect` of `source`, filled
        with `pixels`; blend is BLEND_NORMAL or BLEND_LCH_COLOR. on_progress(fraction) may be called
        while the pixels are written. Returns the layer."""
        raise NotImplementedError

    def mask_to_selection(self, image, layer):
        """Give `layer` a layer mask made from the image's selection."""
        raise NotImplementedError

    def layer_names(self, image):
        """The names of all layers of the image, in groups too."""
        raise NotImplementedError

    def layer_tattoo(self, layer):
        """The layer's tattoo: an id that stays the same when the image is saved and opened again."""
        raise NotImplementedError

    def layer_by_tattoo(self, image, tattoo):
        """The layer with that tattoo, or None."""
        raise NotImplementedError

    def layer_name(self, layer):
        raise NotImplementedError

    def read_parasite(self, layer, name):
        """The data (bytes) of the layer's parasite `name`, or None."""
        raise NotImplementedError

    def write_parasite(self, layer, name, data):
        """Attach a persistent, undoable parasite to the layer (saved in XCF files)."""
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
        """Replace the progress bar's text."""

    def progress_pulse(self):
        """Show activity while the fraction is unknown (daemon starting, queue full)."""

    def progress_end(self):
        pass

    def is_cancelled(self):
        """True once the user asked to stop (hosts that cannot tell return False)."""
        return False


class FlowResult(object):
    def __init__(self, layers, model, timings, clipped_pixels=None, source=None):
        self.layers = layers
        self.model = model
        self.source = source  # the layer that was read (the selected one, or the source of a selected result)
        self.timings = timings  # seconds: read, upload, daemon, download, convert (gray -> RGB), write
        self.clipped_pixels = clipped_pixels  # as reported by the daemon: lightness moved by gamut clipping

    @property
    def plugin_seconds(self):
        """Time spent on the plug-in's side: the whole call but the wait for the daemon to compute (the
        download overlaps the gray -> RGB conversion, so the parts add up to more)."""
        return self.timings.get("call", 0.0) - self.timings.get("daemon", 0.0)


class Progress(object):
    """The progress bar: human names for every step, a fraction that only grows, 1.0 once the layer is in."""

    def __init__(self, host):
        self.host = host
        self.text = None
        self.fraction = 0.0

    def start(self, step):
        self.text = progress_text(step)
        self.host.progress_init(self.text)

    def show(self, text, fraction=None):
        if text != self.text:
            self.text = text
            self.host.progress_text(text)
        if fraction is not None and fraction > self.fraction:
            self.fraction = min(1.0, fraction)
            self.host.progress_update(self.fraction)

    def step(self, step, fraction=None):
        self.show(progress_text(step), fraction)

    def starting_service(self):
        self.step("starting-service")
        self.host.progress_pulse()

    def waiting(self, jobs_ahead):
        self.show(waiting_text(jobs_ahead))
        self.host.progress_pulse()

    def job(self, status):
        """A status from the daemon: its stage, or its place in the queue, and its progress."""
        if status.get("state") == "queued":
            self.waiting(_whole_number(status.get("queue_position")))
            return
        text = progress_text(status.get("stage") or status.get("state"))
        fraction = max(0.0, min(1.0, float(status.get("progress") or 0.0)))
        self.show(text, AT_SENT + (AT_COMPUTED - AT_SENT) * fraction)

    def between(self, start, end):
        """on_progress for a step that runs from `start` to `end` of the bar."""
        return lambda fraction: self.show(self.text, start + (end - start) * max(0.0, min(1.0, fraction)))


def progress_text(step):
    return "%s: %s" % (TITLE.split(" (")[0], STEP_TEXTS.get(step, GENERIC_STAGE_TEXT))


def waiting_text(jobs_ahead):
    """'... waiting for the daemon (2 jobs ahead)'; the queue position is the number of jobs before this one."""
    text = progress_text("queued")
    if jobs_ahead is None:
        return text
    if jobs_ahead == 0:
        return text + " (next in line)"
    return text + " (%d job%s ahead)" % (jobs_ahead, "" if jobs_ahead == 1 else "s")


def _whole_number(value):
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def mode_choices(index):
    """[(mode, label, installed)] in MODES order. Without an index every mode is offered: the daemon decides."""
    choices = []
    for mode in MODES:
        installed = index is None or index.has_mode(mode)
        choices.append((mode, MODE_LABELS[mode] + ("" if installed else " (%s)" % NOT_INSTALLED), installed))
    return choices


def model_choices(index):
    """[(name, label)]: "default" (each mode's own default) first, then every installed model with its mode."""
    choices = [(DEFAULT_MODEL, "Default for the mode")]
    for model in (index.models if index is not None else []):
        if model["task"] not in MODES:
            continue  # detectors and fusion models serve a mode; they are not one
        notes = [MODE_LABELS.get(model["task"], model["task"])]
        if model.get("default"):
            notes.append("default")
        if not model.get("verified"):
            notes.append("unverified")
        choices.append((model["name"], "%s (%s)" % (model["name"], ", ".join(notes))))
    return choices


def colorize(host, image, drawable, settings, connect=client_lib.connect):
    """Run one colorize operation; returns a FlowResult or raises ClientError with a user message."""
    settings.validate()
    started = time.time()
    source = source_of(host, image, drawable)
    progress = Progress(host)
    progress.start("connecting")
    try:
        connected = time.time()
        client = connect(on_start=progress.starting_service)
        connected = _lap(connected)
        try:
            result = _run(host, client, image, source, drawable, settings, progress)
        except client_lib.ModelNotAvailable as exc:
            raise explain_missing_model(exc, settings, client.config)
    finally:
        host.progress_end()
    result.timings["call"] = _lap(started)
    result.timings["connect"] = connected
    _report_timings(result)
    return result


def source_of(host, image, drawable):
    """The layer to read: the selected one, or, for a layer this plug-in made, the layer it was made from
    (Repeat on a fresh result must colorize the photo again, not the colors)."""
    record = result_record(host, drawable)
    if record is None:
        return drawable
    source = host.layer_by_tattoo(image, record.get("source_tattoo"))
    if source is None:
        raise UserError("The selected layer \"%s\" was made by %s from a layer that is no longer in the image. "
                        "Select the black-and-white layer, then run the filter again."
                        % (host.layer_name(drawable), TITLE))
    return source


def result_record(host, layer):
    """The settings a layer made by this plug-in was made with (its parasite), or None for other layers."""
    data = host.read_parasite(layer, RESULT_PARASITE)
    if not data:
        return None
    try:
        record = json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except (ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _run(host, client, image, source, above, settings, progress):
    timings = {}
    rect = host.selection_rect(image, source)
    if rect is None:
        raise UserError("The selection does not overlap the layer \"%s\". Select part of it, or nothing."
                        % host.layer_name(source))
    progress.step("reading")
    started = time.time()
    pixels, pixel_format = host.read_pixels(image, source, rect)
    colour, colour_format, alpha = split_alpha(pixels, pixel_format)
    colour, colour_format = gray_if_channels_equal(colour, colour_format)  # a third of the bytes to send
    timings["read"] = _lap(started)

    progress.step("sending")
    started = time.time()
    job_id = client_lib.submit_when_free(client, colour, rect[2], rect[3], colour_format, settings.job_options(),
                                         timeout=client.config.job_timeout, on_busy=progress.waiting)
    timings["upload"] = _lap(started)
    progress.show(progress.text, AT_SENT)
    started = time.time()
    guard = client_lib.guard_job(client, job_id)  # cancels the job if GIMP kills us (the user's Cancel)
    timings["guard"] = _lap(started)
    try:
        started = time.time()
        status = client_lib.wait_for_job(client, job_id, progress=progress.job, is_cancelled=host.is_cancelled,
                                         timeout=client.config.job_timeout)
        timings["daemon"] = _lap(started)
        progress.step("receiving", AT_COMPUTED)
        model = _model_name(status, settings)
        # The download runs beside GIMP's gray -> RGB conversion: both take a good part of a second at 12 MP.
        downloads = Background(lambda: _download_all(client, job_id, status, rect, timings))
        layers = _insert_layers(host, image, source, above, rect, downloads, alpha, settings, model, timings,
                                progress)
    finally:
        if guard is not None:
            guard.release()
    progress.show(progress.text, 1.0)  # the layers are in the image: only now is the work done
    return FlowResult(layers, model, timings, status.get("clipped_pixels"), source)


class Background(object):
    """Run `work` in a thread (network only: GIMP's own calls stay on the plug-in's main thread)."""

    def __init__(self, work):
        self._result, self._error = None, None
        self._thread = threading.Thread(target=self._run, args=(work,))
        self._thread.daemon = True
        self._thread.start()

    def _run(self, work):
        try:
            self._result = work()
        except Exception as exc:  # re-raised on the main thread by result()
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


def _download_all(client, job_id, status, rect, timings):
    started = time.time()
    outputs = [_download(client, job_id, layer, rect) for layer in status.get("layers") or []]
    timings["download"] = _lap(started)
    if not outputs:
        raise client_lib.JobFailed("The daemon finished the job without producing a layer. See its log %s."
                                   % client.config.log_file)
    return outputs


def explain_missing_model(error, settings, config):
    """The daemon's 'no model' sentence, with what this user can do about it here and now."""
    index = client_lib.load_models_index(config)
    folder = (index.user_models_dir if index else None) or config.models_dir
    if error.server_code != "no_model_installed":
        return client_lib.ModelNotAvailable(
            "%s Choose one of the installed models in the filter's Model menu, or put the model's .onnx file into "
            "%s (`gimp-colorize models` checks it)." % (error.message, folder), error.server_code)
    installed = [mode for mode in MODES if index is not None and index.has_mode(mode)]
    message = "No model for the mode \"%s\" is installed, so this mode cannot run." % MODE_LABELS[settings.mode]
    if installed:
        message += " Installed: %s." % ", ".join("\"%s\"" % MODE_LABELS[mode] for mode in installed)
    message += (" To add one, put a model file (.onnx) for the mode '%s' into %s; `gimp-colorize models` lists "
                "what it finds there." % (settings.mode, folder))
    return client_lib.ModelNotAvailable(message, error.server_code)


def _model_name(status, settings):
    """The model that ran: the job's `model` when the daemon reports it, else the one named in its first
    layer's name ("Colorized (NAME)"), else the requested one."""
    if status.get("model"):
        return status["model"]
    first = (status.get("layers") or [{}])[0].get("name") or ""
    if "(" in first and ")" in first.split("(", 1)[1]:
        return first.split("(", 1)[1].split(")", 1)[0]
    return settings.model_name or DEFAULT_MODEL


def _lap(started):
    return time.time() - started


def _download(client, job_id, layer, rect):
    """(bytes, format) of one result layer, checked against the expected size."""
    pixel_format = layer.get("format")
    if pixel_format not in PIXEL_FORMATS or layer.get("width") != rect[2] or layer.get("height") != rect[3]:
        raise client_lib.JobFailed("The daemon returned an unexpected layer (%s, %sx%s). Update gimp-colorize, so "
                                   "that the plug-in and the daemon match." % (pixel_format, layer.get("width"),
                                                                               layer.get("height")))
    data = client.download_layer(job_id, layer.get("index", 0))
    if len(data) != expected_size(pixel_format, rect[2], rect[3]):
        raise client_lib.JobFailed("The daemon sent %d bytes for a %dx%d %s layer. See its log %s."
                                   % (len(data), rect[2], rect[3], pixel_format, client.config.log_file))
    return data, pixel_format


def _insert_layers(host, image, source, above, rect, downloads, alpha, settings, model, timings, progress):
    """The only step that changes the image: one undo group. `downloads` gives the result's pixels."""
    blend = BLEND_LCH_COLOR if settings.output == "color-layer" else BLEND_NORMAL
    masked = host.has_selection(image)
    record = dict(settings.record(), model=model, source_tattoo=host.layer_tattoo(source),
                  source_name=host.layer_name(source), rect=list(rect), format=1)
    taken = set(host.layer_names(image))
    layers = []
    host.undo_group_start(image)
    try:
        outputs = _convert_while_downloading(host, image, downloads, timings, progress)
        progress.step("writing", AT_CONVERTED)
        started = time.time()
        share = (AT_WRITTEN - AT_CONVERTED) / len(outputs)
        # Each layer goes directly above the selected one, pushing earlier ones up: sample 1 ends on top.
        for index in range(len(outputs)):
            pixels, pixel_format = outputs[index]
            if alpha is not None:
                pixels, pixel_format = join_alpha(pixels, pixel_format, alpha)
            name = unique_name(layer_name(settings, model, index, len(outputs)), taken)
            taken.add(name)
            start = AT_CONVERTED + share * index
            layer = host.add_layer(image, source, above, name, rect, pixels, pixel_format, blend,
                                   on_progress=progress.between(start, start + share))
            if masked:
                host.mask_to_selection(image, layer)
            host.write_parasite(layer, RESULT_PARASITE, json.dumps(
                dict(record, sample=index + 1), sort_keys=True).encode("utf-8"))
            layers.insert(0, layer)
        timings["write"] = _lap(started)
    finally:
        host.undo_group_end(image)
    return layers


def _convert_while_downloading(host, image, downloads, timings, progress):
    """Convert a GRAY image to RGB (an RGB layer in a GRAY image would silently turn gray) while the
    result downloads; -> the downloaded outputs. Inside the caller's undo group."""
    started = time.time()
    converted = host.image_is_gray(image)
    if converted:
        progress.step("converting", AT_RECEIVED)
        host.convert_to_rgb(image)
    timings["convert"] = _lap(started)
    started = time.time()
    try:
        outputs = downloads.result()
    except ClientError:
        if converted:
            host.convert_to_gray(image)  # no result after all: leave the image as it was
        raise
    timings["wait_download"] = _lap(started)
    return outputs


def layer_name(settings, model, index, count):
    """'Colorized: full-mnv2', with what sets it apart from the defaults ('color only', 'vibrancy 1.5',
    'sample 1 of 3'), so variants can be told apart in the Layers dialog."""
    details = [model]
    if settings.output == "color-layer":
        details.append("color only")
    if round(float(settings.vibrancy), 3) != DEFAULT_VIBRANCY:
        details.append("vibrancy %s" % format_vibrancy(settings.vibrancy))
    if count > 1:
        details.append("sample %d of %d" % (index + 1, count))
    return "Colorized: " + ", ".join(details)


def format_vibrancy(value):
    return ("%.2f" % float(value)).rstrip("0").rstrip(".")


def unique_name(name, taken):
    """`name`, or `name (2)`, `name (3)`, ...: GIMP would append "#1" to a duplicate by itself."""
    if name not in taken:
        return name
    number = 2
    while "%s (%d)" % (name, number) in taken:
        number += 1
    return "%s (%d)" % (name, number)


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
