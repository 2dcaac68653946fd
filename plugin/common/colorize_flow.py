"""The host-agnostic part of the colorize plug-ins: everything above one small adapter per GIMP version.

Runs on Python 2.7 and 3.x, standard library only (see gimp_colorize_client.py).

What a run does, in order:
 1. validate the settings; find the photo (for a result or a colour hints layer: the layer it was made
    for), the rectangle to read, the hints layer and the reference photo; connect to the daemon (starting
    it when needed);
 2. read the source inside the selection bounds (the whole layer without a selection, and in instance
    mode when the selection marks the objects);
 3. upload the colour hints, the reference photo and the object selection (colorize_inputs.py), submit
    the pixels (waiting while the daemon's queue is full), follow the job's progress, cancel the daemon
    job when the user cancels;
 4. in ONE undo group: convert a GRAY image to RGB while the result downloads, insert the result(s) as new
    layer(s) directly above the selected layer (layers the daemon puts in a group go into one layer group:
    diverse samples, instance layers), with unique names, masks, visibility and a parasite saying how they
    were made, in Normal mode ("rgb") or LCh Color mode ("color-layer").

Selections: normally the new layers cover only the selection's bounding box and get a layer mask made
from the selection, so outside it the image shows the untouched source. In instance mode with boxes
"selection" or "both" the selection instead marks the objects (each separate area is one) and the
whole layer is colorized. The source, the hints layer and the reference image are only ever read.
Nothing touches the image before step 4, so any failure before it leaves the image exactly as it was.
"""

from __future__ import absolute_import, division, print_function

import os
import random
import sys
import threading
import time

import colorize_inputs as inputs_lib
import gimp_colorize_client as client_lib
import pixel_bytes
from colorize_inputs import (HINTS_CHOICES, HINTS_LAYER_NAME, HINTS_PARASITE, REFERENCE_CHOICES,  # noqa: F401
                             RESULT_PARASITE, TITLE, result_record, source_of, unique_name)
from gimp_colorize_client import ClientError, UserError  # noqa: F401
from pixel_bytes import (PIXEL_FORMATS, PixelFormat, expected_size, gray_if_channels_equal, join_alpha,  # noqa: F401
                         pixel_format_name, split_alpha)

MODES = ("full", "instance", "diverse")
OUTPUTS = ("rgb", "color-layer")
BOX_CHOICES = ("auto", "selection", "both")
MAX_SAMPLES = 16
RANDOM_SEED = -1  # the seed argument's "a new one each run"
MAX_SEED = 2 ** 31 - 1  # GIMP's int arguments are 32-bit: every sample's seed must fit one
NEW_SEEDS = 1000000  # a new seed is below this: short enough to read in a layer name and type in again
VIBRANCY_MIN, VIBRANCY_MAX, DEFAULT_VIBRANCY = 0.0, 2.0, 1.0
DEFAULT_MODEL = "default"  # the mode's default model (so is an empty name, for scripts)
BLEND_NORMAL = "normal"
BLEND_LCH_COLOR = "lch-color"

# What the user reads (GIMP's interface is in US English). Both plug-ins build their menus from these.
DESCRIPTION = ("Adds natural colors to a black-and-white photo as a new layer above it, using an AI model that "
               "runs on this computer. The photo's own layer is not changed.")
HINTS_DESCRIPTION = ("Adds a transparent \"Color hints\" layer above the selected layer. Paint dots in the colors "
                     "you want on it with any brush (a gray dot keeps a place neutral); Colorize Photo (AI) then "
                     "follows them.")
HINTS_TITLE = "Add Color Hints Layer"
MODE_LABELS = {"full": "Whole photo", "instance": "Object by object", "diverse": "Several variants"}
MODE_HELP = {"full": "one model colors the whole photo",
             "instance": "objects are found and colored one by one, then blended with the whole-photo colors",
             "diverse": "several plausible colorings, one layer each"}
OUTPUT_LABELS = {"rgb": "Normal layer", "color-layer": "Color-only layer (LCh Color mode)"}
HINTS_LABELS = {"auto": "The image's Color hints layer, if any", "none": "None", "layer": "The layer chosen"}
REFERENCE_LABELS = {"none": "None", "image": "An open image", "file": "A file"}
BOX_LABELS = {"auto": "Automatically", "selection": "From the selection",
              "both": "Automatically and from the selection"}
SELECTION_MARKS_OBJECTS = ("The selection marks the objects (each separate selected area is one object), and the "
                           "whole layer is colorized.")
NOT_INSTALLED = "no model installed"

# Progress: what each step of the plug-in and each stage the daemon reports is called, and where the bar is.
STEP_TEXTS = {
    "connecting": "connecting to the colorization service",
    "starting-service": "starting the colorization service (first run takes a few seconds)",
    "reading-reference": "reading the reference photo",
    "reading": "reading the layer",
    "sending-hints": "sending the color hints",
    "sending-reference": "sending the reference photo",
    "sending-selection": "sending the selection that marks the objects",
    "sending": "sending the photo to the colorization service",
    "queued": "waiting for the daemon",
    "starting": "loading the model",
    "preprocess": "preparing the photo",
    "inference": "colorizing",
    "upsample_recombine": "applying the colors at full size",
    "detect": "finding the objects",
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


class Settings(object):
    """The procedure's arguments. hints_layer and reference_image are the host's layer and image objects."""

    def __init__(self, mode="full", model="", vibrancy=DEFAULT_VIBRANCY, output="rgb", samples=1, seed=None,
                 hints="auto", hints_layer=None, reference="none", reference_image=None, reference_file=None,
                 reference_strength=1.0, boxes="auto", instance_layers=False):
        self.mode = mode
        self.model = model or ""
        self.vibrancy = DEFAULT_VIBRANCY if vibrancy is None else vibrancy
        self.output = output
        self.samples = samples
        self.seed = None if seed in (None, RANDOM_SEED) else seed
        self.hints, self.hints_layer = hints, hints_layer
        self.reference, self.reference_image, self.reference_file = reference, reference_image, reference_file
        self.reference_strength = 1.0 if reference_strength is None else reference_strength
        self.boxes, self.instance_layers = boxes, bool(instance_layers)

    @property
    def model_name(self):
        """The model asked for by name, or None for the mode's default."""
        return None if self.model in ("", DEFAULT_MODEL) else self.model

    @property
    def selection_marks_objects(self):
        """Instance mode with boxes from the selection: the selection says where the objects are, it does not
        limit the colorized area."""
        return self.mode == "instance" and self.boxes != "auto"

    def validate(self):
        for name, value, allowed in (("mode", self.mode, MODES), ("output", self.output, OUTPUTS),
                                     ("color hints", self.hints, HINTS_CHOICES),
                                     ("reference photo", self.reference, REFERENCE_CHOICES),
                                     ("boxes", self.boxes, BOX_CHOICES)):
            if value not in allowed:
                raise UserError("Unknown %s '%s'. Choose one of %s." % (name, value, ", ".join(allowed)))
        if not 1 <= int(self.samples) <= MAX_SAMPLES:
            raise UserError("Samples must be between 1 and %d, not %s." % (MAX_SAMPLES, self.samples))
        if not VIBRANCY_MIN <= float(self.vibrancy) <= VIBRANCY_MAX:
            raise UserError("Vibrancy must be between %g (gray) and %g (twice as vivid), not %s; %g keeps the "
                            "model's own colors." % (VIBRANCY_MIN, VIBRANCY_MAX, self.vibrancy, DEFAULT_VIBRANCY))
        if not 0.0 <= float(self.reference_strength) <= 1.0:
            raise UserError("Reference strength must be between 0 (ignore the reference) and 1 (follow it fully), "
                            "not %s." % self.reference_strength)
        if self.seed is not None and not 0 <= int(self.seed) < 2 ** 63:
            raise UserError("The seed must be a whole number from 0 up, or %d for a new one each run, not %s."
                            % (RANDOM_SEED, self.seed))

    def run_seed(self):
        """The seed sent in diverse mode: the one asked for, else a new one (the daemon's own would not always
        leave room below MAX_SEED for every sample's seed, seed + i - 1, to be typed into the seed field)."""
        if self.mode != "diverse":
            return None
        if self.seed is not None:
            return int(self.seed)
        return random.SystemRandom().randrange(NEW_SEEDS)

    def job_options(self, seed=None):
        """Query parameters for POST /v1/jobs; None values mean 'the daemon's default'."""
        options = {"mode": self.mode, "model": self.model_name, "vibrancy": round(float(self.vibrancy), 3)}
        if self.mode == "diverse":
            options.update(samples=int(self.samples), seed=seed)
        if self.mode == "instance":
            options.update(boxes=self.boxes if self.boxes != "auto" else None,
                           instance_layers="true" if self.instance_layers else None)
        return options

    def record(self):
        """What a result layer remembers about how it was made (with the model that ran)."""
        record = {"mode": self.mode, "model": self.model or DEFAULT_MODEL, "vibrancy": round(float(self.vibrancy), 3),
                  "output": self.output, "samples": int(self.samples) if self.mode == "diverse" else 1,
                  "seed": self.seed}
        if self.mode == "instance":
            record.update(boxes=self.boxes, instance_layers=self.instance_layers)
        return record


class HostAdapter(object):
    """The GIMP calls the flow needs. One subclass per GIMP version; tests use a fake.

    Rectangles are (x, y, width, height) in the drawable's own coordinates unless named "in the image".
    Pixel data are byte strings in a daemon format (PIXEL_FORMATS): sRGB-encoded ("gamma"), row-major,
    native (little) endian. "Layers" include layer groups where it says so.
    """

    def selection_rect(self, image, drawable):
        """Bounds of the selection inside the drawable (the whole drawable without a selection);
        None when the selection does not touch the drawable."""
        raise NotImplementedError

    def has_selection(self, image):
        raise NotImplementedError

    def read_selection(self, image, rect):
        """The selection mask as gray8 over `rect` in the image (0 where the rectangle leaves the image)."""
        raise NotImplementedError

    def read_pixels(self, image, drawable, rect):
        """(bytes, daemon format name) of the drawable inside rect, in the image's own precision."""
        raise NotImplementedError

    def read_rgba8(self, image, drawable, rect):
        """The drawable inside rect as RGBA, 8 bits per sample (gray repeated, opaque without alpha)."""
        pixels, pixel_format = self.read_pixels(image, drawable, rect)
        return pixel_bytes.to_rgba8(pixels, pixel_format)

    def image_is_gray(self, image):
        raise NotImplementedError

    def convert_to_rgb(self, image):
        raise NotImplementedError

    def convert_to_gray(self, image):
        """Undo convert_to_rgb (only when the result could not be fetched after all)."""
        raise NotImplementedError

    def add_layer(self, image, source, above, name, rect, pixels, pixel_format, blend, on_progress=None,
                  group=None):
        """Insert a new layer directly above `above` (in its layer group), or with `group` at the bottom of
        that group, at `rect` of `source`, filled with `pixels`; blend is BLEND_NORMAL or BLEND_LCH_COLOR.
        on_progress(fraction) may be called while the pixels are written. Returns the layer."""
        raise NotImplementedError

    def add_group(self, image, above, name):
        """Insert a new, empty layer group directly above `above` (in its layer group). Returns it."""
        raise NotImplementedError

    def add_empty_layer(self, image, above, name, bounds):
        """Insert a transparent RGBA layer directly above `above`, at `bounds` (x, y, w, h) in the image."""
        raise NotImplementedError

    def mask_to_selection(self, image, layer):
        """Give `layer` (or group) a layer mask made from the image's selection."""
        raise NotImplementedError

    def set_mask(self, image, layer, mask):
        """Give `layer` a layer mask holding `mask` (gray8 of the layer's size, 255 = visible)."""
        raise NotImplementedError

    def set_visible(self, layer, visible):
        raise NotImplementedError

    def select_layer(self, image, layer):
        """Make `layer` the selected (active) one, so painting goes onto it."""
        raise NotImplementedError

    def layer_names(self, image):
        """The names of all layers of the image, groups and the layers in them too."""
        return [self.layer_name(layer) for layer in self.all_layers(image)]

    def all_layers(self, image):
        """Every layer and group of the image, top to bottom, the layers in a group right after it."""
        raise NotImplementedError

    def layer_parent(self, layer):
        """The layer group holding the layer, or None at the top level."""
        raise NotImplementedError

    def layer_below(self, image, layer):
        """The layer or group directly under `layer` in its group, or None."""
        raise NotImplementedError

    def is_group(self, layer):
        raise NotImplementedError

    def has_alpha(self, layer):
        raise NotImplementedError

    def same_layer(self, first, second):
        return first == second

    def layer_bounds(self, layer):
        """(x, y, width, height) of the layer in the image."""
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

    def image_name(self, image):
        raise NotImplementedError

    def image_thumbnail(self, image, size):
        """(bytes, width, height, 8-bit format) of the image's visible layers merged, at most size x size;
        the image is not changed."""
        raise NotImplementedError

    def load_image(self, path):
        """Open an image file GIMP can read, without a window (UserError with a sentence when it cannot)."""
        raise NotImplementedError

    def delete_image(self, image):
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
    def __init__(self, layers, model, timings, clipped_pixels=None, source=None, details=None):
        self.layers = layers  # what was added, top to bottom: a group is followed by the layers in it
        self.model = model
        self.source = source  # the layer that was read (the selected one, or the photo behind a result or hints)
        self.timings = timings  # seconds: read, hints, reference, selection, upload, daemon, download, convert, write
        self.clipped_pixels = clipped_pixels  # as reported by the daemon: lightness moved by gamut clipping
        self.details = details or {}  # the job's details (the seeds, the objects found)

    @property
    def plugin_seconds(self):
        """Time spent on the plug-in's side: the whole call but the wait for the daemon to compute (the
        download overlaps the gray -> RGB conversion, so the parts add up to more)."""
        return self.timings.get("call", 0.0) - self.timings.get("daemon", 0.0)


class Progress(object):
    """The progress bar: human names for every step, a fraction that only grows, 1.0 once the layer is in."""

    def __init__(self, host, mode="full"):
        self.host = host
        self.mode = mode
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
        text = stage_text(status.get("stage") or status.get("state"), self.mode, object_count(status))
        fraction = max(0.0, min(1.0, float(status.get("progress") or 0.0)))
        self.show(text, AT_SENT + (AT_COMPUTED - AT_SENT) * fraction)

    def between(self, start, end):
        """on_progress for a step that runs from `start` to `end` of the bar."""
        return lambda fraction: self.show(self.text, start + (end - start) * max(0.0, min(1.0, fraction)))


def progress_text(step):
    return "%s: %s" % (TITLE.split(" (")[0], STEP_TEXTS.get(step, GENERIC_STAGE_TEXT))


def stage_text(stage, mode, objects=None):
    """The daemon's stage in words; in instance mode, with the number of objects once the daemon reports it."""
    colouring_objects = stage == "instances" or (mode == "instance" and stage == "inference")
    if not colouring_objects:
        return progress_text(stage)
    if objects is None:
        return progress_text("instances")
    what = "coloring %d object%s" % (objects, "" if objects == 1 else "s")
    if stage == "inference":
        what += " and blending them into the photo"
    return "%s: %s" % (TITLE.split(" (")[0], what)


def object_count(status):
    """How many objects the daemon is coloring (its details' `instances`), or None while it has not said."""
    found = (status.get("details") or {}).get("instances")
    if isinstance(found, list):
        return len(found)
    return _whole_number(found)


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


def hints_layer_choices(host, image, source):
    """[(layer, label)] for the dialog's Color hints menu: None first, then the hints layers (marked ones
    first, the one made for `source` at their head), then the other layers a person may have painted on."""
    marked, others = [], []
    for layer in host.all_layers(image):
        if host.same_layer(layer, source) or host.is_group(layer) or result_record(host, layer) is not None:
            continue
        if inputs_lib.hints_record(host, layer) is not None:
            own = inputs_lib.hints_record(host, layer).get("source_tattoo") == host.layer_tattoo(source)
            marked.insert(0 if own else len(marked), layer)
        elif host.has_alpha(layer):
            others.append(layer)
    return [(None, "None")] + [(layer, host.layer_name(layer)) for layer in marked + others]


class RunPlan(object):
    """What a run reads and sends, settled before anything goes to the daemon."""

    def __init__(self, source, above, rect, hints_layer, masks_from_selection, selection_marks_objects):
        self.source, self.above, self.rect = source, above, rect
        self.hints_layer = hints_layer
        self.masks_from_selection = masks_from_selection  # the new layers show only inside the selection
        self.selection_marks_objects = selection_marks_objects
        self.hints_sent = False  # a hints layer with nothing painted over the photo sends nothing


def plan_run(host, image, drawable, settings):
    """The photo, where the result goes, the rectangle to read and the hints layer; a sentence when the
    selection or a chosen layer cannot work."""
    source, above = source_of(host, image, drawable)
    marks = settings.selection_marks_objects
    if marks and not host.has_selection(image):
        raise UserError("Find objects is set to \"%s\", which needs a selection: select the objects (each separate "
                        "selected area is one object), or choose \"%s\"." % (BOX_LABELS[settings.boxes],
                                                                             BOX_LABELS["auto"]))
    rect = (0, 0) + tuple(host.layer_bounds(source)[2:]) if marks else host.selection_rect(image, source)
    if rect is None:
        raise UserError("The selection does not overlap the layer \"%s\". Select part of it, or nothing."
                        % host.layer_name(source))
    hints = inputs_lib.hints_layer_for(host, image, source, settings)
    return RunPlan(source, above, rect, hints, host.has_selection(image) and not marks, marks)


def colorize(host, image, drawable, settings, connect=client_lib.connect):
    """Run one colorize operation; returns a FlowResult or raises ClientError with a user message."""
    settings.validate()
    started = time.time()
    plan = plan_run(host, image, drawable, settings)
    progress = Progress(host, settings.mode)
    progress.start("reading-reference" if settings.reference != "none" else "connecting")
    try:
        reference = inputs_lib.reference_for(host, settings)
        progress.step("connecting")
        connected = time.time()
        client = connect(on_start=progress.starting_service)
        connected = _lap(connected)
        try:
            result = _run(host, client, image, plan, reference, settings, progress)
        except client_lib.ModelNotAvailable as exc:
            raise explain_missing_model(exc, settings, client.config)
        except client_lib.BadRequest as exc:
            raise explain_refused_guidance(host, exc, plan, reference)
    finally:
        host.progress_end()
    result.timings["call"] = _lap(started)
    result.timings["connect"] = connected
    _report_timings(result)
    return result


def _run(host, client, image, plan, reference, settings, progress):
    timings = {}
    rect = plan.rect
    progress.step("reading")
    started = time.time()
    pixels, pixel_format = host.read_pixels(image, plan.source, rect)
    colour, colour_format, alpha = split_alpha(pixels, pixel_format)
    colour, colour_format = gray_if_channels_equal(colour, colour_format)  # a third of the bytes to send
    timings["read"] = _lap(started)

    seed = settings.run_seed()
    options = settings.job_options(seed)
    sent = _send_inputs(host, client, image, plan, reference, settings, progress, timings)
    options.update(sent)
    progress.step("sending")
    started = time.time()
    job_id = client_lib.submit_when_free(client, colour, rect[2], rect[3], colour_format, options,
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
        record = _record(host, plan, settings, model, status, seed, sent, reference)
        layers = _insert_results(host, image, plan, downloads, alpha, settings, model, status, record, timings,
                                 progress)
    finally:
        if guard is not None:
            guard.release()
    progress.show(progress.text, 1.0)  # the layers are in the image: only now is the work done
    return FlowResult(layers, model, timings, status.get("clipped_pixels"), plan.source, status.get("details"))


def _send_inputs(host, client, image, plan, reference, settings, progress, timings):
    """Upload the hints, the reference and the object selection; -> the job's query parameters naming them."""
    sent = {}
    width, height = plan.rect[2], plan.rect[3]
    if plan.hints_layer is not None:
        progress.step("sending-hints")
        started = time.time()
        hints = inputs_lib.read_hints(host, image, plan.hints_layer, plan.source, plan.rect)
        timings["hints_read"] = _lap(started)
        if hints is not None:  # nothing painted over this photo: no hints, and no need for a guided model
            sent["hints"] = inputs_lib.upload(client, hints, width, height, "rgba8", progress.waiting)
            plan.hints_sent = True
        timings["hints"] = _lap(started)
    if reference is not None:
        progress.step("sending-reference")
        started = time.time()
        sent["reference"] = inputs_lib.upload(client, reference.pixels, reference.width, reference.height, "rgb8",
                                              progress.waiting)
        sent["reference_strength"] = round(float(settings.reference_strength), 3)
        timings["reference"] = _lap(started)
    if plan.selection_marks_objects:
        progress.step("sending-selection")
        started = time.time()
        mask = host.read_selection(image, inputs_lib.in_image(host, plan.source, plan.rect))
        sent["selection"] = inputs_lib.upload(client, mask, width, height, "gray8", progress.waiting)
        timings["selection"] = _lap(started)
    return sent


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
    """[(pixels, format, mask or None)] in the order of the job's layers."""
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


def explain_refused_guidance(host, error, plan, reference):
    """A refusal that may come from the hints or the reference the run added: say where they came from."""
    if not plan.hints_sent and reference is None:
        return error
    extra = []
    if plan.hints_sent:
        extra.append("the color hints come from the layer \"%s\"" % host.layer_name(plan.hints_layer))
    if reference is not None:
        extra.append("the reference photo is %s" % reference.description)
    return client_lib.BadRequest("%s In this run %s; choose None for them in the filter's dialog to colorize "
                                 "without them." % (error.message, " and ".join(extra)))


def _model_name(status, settings):
    """The model that ran: the job's `model` when the daemon reports it, else the one named in its first
    layer's name ("Colorized (NAME)"), else the requested one."""
    if status.get("model"):
        return status["model"]
    first = (status.get("layers") or [{}])[0].get("name") or ""
    if first.startswith("Colorized (") and first.endswith(")"):
        return first[len("Colorized ("):-1]
    return settings.model_name or DEFAULT_MODEL


def _lap(started):
    return time.time() - started


def _download(client, job_id, layer, rect):
    """(bytes, format, mask bytes or None) of one result layer, checked against the expected size."""
    pixel_format = layer.get("format")
    if pixel_format not in PIXEL_FORMATS or layer.get("width") != rect[2] or layer.get("height") != rect[3]:
        raise client_lib.JobFailed("The daemon returned an unexpected layer (%s, %sx%s). Update gimp-colorize, so "
                                   "that the plug-in and the daemon match." % (pixel_format, layer.get("width"),
                                                                               layer.get("height")))
    data = client.download_layer(job_id, layer.get("index", 0))
    _check_size(client, data, pixel_format, rect)
    mask = None
    if layer.get("mask"):
        mask = client.download_mask(job_id, layer.get("index", 0))
        _check_size(client, mask, "gray8", rect)
    return data, pixel_format, mask


def _check_size(client, data, pixel_format, rect):
    if len(data) != expected_size(pixel_format, rect[2], rect[3]):
        raise client_lib.JobFailed("The daemon sent %d bytes for a %dx%d %s layer. See its log %s."
                                   % (len(data), rect[2], rect[3], pixel_format, client.config.log_file))


def _record(host, plan, settings, model, status, seed, sent, reference):
    """The parasite every new layer and group gets (each layer adds its own sample, seed and group)."""
    record = dict(settings.record(), model=model, source_tattoo=host.layer_tattoo(plan.source),
                  source_name=host.layer_name(plan.source), rect=list(plan.rect), format=1, seed=seed)
    record["hints"] = host.layer_name(plan.hints_layer) if "hints" in sent else None
    if reference is not None:
        record.update(reference=reference.label, reference_strength=sent["reference_strength"])
    found = (status.get("details") or {}).get("instances")
    if isinstance(found, list):
        record["instances"] = [item.get("box") for item in found if isinstance(item, dict)]
    return record


def result_entries(layers):
    """The job's layers as what goes into the image, top to bottom: [(group name or None, [layer, ...])];
    consecutive layers of one group make one layer group."""
    entries = []
    for layer in layers:
        group = layer.get("group") or None
        if group is not None and entries and entries[-1][0] == group:
            entries[-1][1].append(layer)
        else:
            entries.append((group, [layer]))
    return entries


def _insert_results(host, image, plan, downloads, alpha, settings, model, status, record, timings, progress):
    """The only step that changes the image: one undo group. `downloads` gives the result's pixels."""
    host.undo_group_start(image)
    try:
        outputs = _convert_while_downloading(host, image, downloads, timings, progress)
        progress.step("writing", AT_CONVERTED)
        started = time.time()
        entries = result_entries(status.get("layers") or [])
        writer = ResultWriter(host, image, plan, settings, model, record, alpha, progress, len(outputs))
        writer.objects = object_count(status)
        writer.ungrouped = sum(len(layers) for group, layers in entries if group is None)
        for group, layers in entries:
            if group is None:
                for layer in layers:
                    writer.top_level(layer, outputs[_index_of(layer, outputs)])
            else:
                writer.group(group, [(layer, outputs[_index_of(layer, outputs)]) for layer in layers])
        writer.select_first_shown()
        timings["write"] = _lap(started)
    finally:
        host.undo_group_end(image)
    return writer.created


def _index_of(layer, outputs):
    index = layer.get("index", 0)
    if not isinstance(index, int) or not 0 <= index < len(outputs):
        raise client_lib.JobFailed("The daemon listed a layer %r it did not send. Update gimp-colorize, so that "
                                   "the plug-in and the daemon match." % (index,))
    return index


class ResultWriter(object):
    """Puts the downloaded layers into the image, each directly above the last, so the first ends on top."""

    def __init__(self, host, image, plan, settings, model, record, alpha, progress, count):
        self.host, self.image, self.plan, self.settings = host, image, plan, settings
        self.model, self.record, self.alpha, self.progress = model, record, alpha, progress
        self.blend = BLEND_LCH_COLOR if settings.output == "color-layer" else BLEND_NORMAL
        self.taken = set(host.layer_names(image))
        self.count, self.done = count, 0
        self.ungrouped, self.ungrouped_done = 1, 0  # top-level layers: "sample i of n" when several
        self.objects = None
        self.created = []
        self.layers_shown = []  # (layer, visible) of the layers (not groups) made, top to bottom
        self._selection = None

    def top_level(self, layer, output):
        number = self.ungrouped_done
        self.ungrouped_done += 1
        name = layer_name(self.settings, self.model, number, self.ungrouped, self.objects)
        new = self._add(layer, output, name, group=None)
        self._record(new, layer, number + 1, None)

    def group(self, name, members):
        title = self._unique(group_title(name, self.settings))
        group = self.host.add_group(self.image, self.plan.above, title)
        self.created.append(group)
        group_masked = self.plan.masks_from_selection and any(output[2] is not None for _, output in members)
        if group_masked:
            self.host.mask_to_selection(self.image, group)  # the members keep their own masks from the daemon
        self._record(group, {"name": name}, None, title)
        for number, (layer, output) in enumerate(members, 1):
            new = self._add(layer, output, layer.get("name") or "layer %d" % number, group, group_masked)
            self._record(new, layer, number, title)

    def select_first_shown(self):
        """GIMP selects the layer inserted last (the last, hidden diverse sample): select the top one shown."""
        shown = [made for made, visible in self.layers_shown if visible]
        if shown:
            self.host.select_layer(self.image, shown[0])

    def _add(self, layer, output, name, group, group_masked=False):
        pixels, pixel_format, mask = output
        if self.alpha is not None:
            try:
                pixels, pixel_format = join_alpha(pixels, pixel_format, self.alpha)
            except ValueError:
                raise client_lib.JobFailed("The daemon returned a layer whose depth differs from the image's (%s); "
                                           "update gimp-colorize." % pixel_format)
        name = self._unique(name)
        share = (AT_WRITTEN - AT_CONVERTED) / self.count
        start = AT_CONVERTED + share * self.done
        new = self.host.add_layer(self.image, self.plan.source, self.plan.above, name, self.plan.rect, pixels,
                                  pixel_format, self.blend, on_progress=self.progress.between(start, start + share),
                                  group=group)
        self.done += 1
        self.created.append(new)
        self.layers_shown.append((new, layer.get("visible") is not False))
        self._mask(new, mask, group, group_masked)
        if layer.get("visible") is False:
            self.host.set_visible(new, False)
        return new

    def _mask(self, new, mask, group, group_masked):
        limit = self.plan.masks_from_selection
        if mask is not None:
            if limit and group is None:
                mask = pixel_bytes.darker_of(mask, self._selection_mask())
            self.host.set_mask(self.image, new, mask)
        elif limit and not group_masked:
            self.host.mask_to_selection(self.image, new)

    def _selection_mask(self):
        if self._selection is None:
            self._selection = self.host.read_selection(
                self.image, inputs_lib.in_image(self.host, self.plan.source, self.plan.rect))
        return self._selection

    def _record(self, new, layer, sample, group):
        details = layer.get("details") or {}
        record = dict(self.record, sample=details.get("sample", sample), group=group, layer=layer.get("name"))
        if "seed" in details:
            record["seed"] = details["seed"]
        inputs_lib.write_record(self.host, new, RESULT_PARASITE, record)

    def _unique(self, name):
        name = unique_name(name, self.taken)
        self.taken.add(name)
        return name


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


def layer_name(settings, model, index, count, objects=None):
    """'Colorized: full-mnv2', with what sets it apart from the defaults ('color only', 'vibrancy 1.5',
    '2 objects', 'sample 1 of 3'), so variants can be told apart in the Layers dialog."""
    details = [model]
    if settings.output == "color-layer":
        details.append("color only")
    if round(float(settings.vibrancy), 3) != DEFAULT_VIBRANCY:
        details.append("vibrancy %s" % format_vibrancy(settings.vibrancy))
    if objects is not None and settings.mode == "instance":
        details.append("%d object%s" % (objects, "" if objects == 1 else "s"))
    if count > 1:
        details.append("sample %d of %d" % (index + 1, count))
    return "Colorized: " + ", ".join(details)


def group_title(group, settings):
    """The daemon's group name ('Colorize: diverse (MODEL)', 'Instances') with the settings that set it apart."""
    details = [group]
    if settings.output == "color-layer":
        details.append("color only")
    if round(float(settings.vibrancy), 3) != DEFAULT_VIBRANCY:
        details.append("vibrancy %s" % format_vibrancy(settings.vibrancy))
    return ", ".join(details)


def format_vibrancy(value):
    return ("%.2f" % float(value)).rstrip("0").rstrip(".")


def _report_timings(result):
    """With GIMP_COLORIZE_TIMINGS set, print where the time went (benchmarks and the end-to-end test)."""
    if not os.environ.get("GIMP_COLORIZE_TIMINGS"):
        return
    parts = " ".join("%s=%.3f" % item for item in sorted(result.timings.items()))
    sys.stderr.write("gimp-colorize timings: %s plugin_side=%.3f\n" % (parts, result.plugin_seconds))
    sys.stderr.flush()
