#!/usr/bin/env python2
# -*- coding: utf-8 -*-
"""GIMP 2.10 Python-Fu plug-in: Filters > Colorize > Colorize Photo (AI)... (plug-in-gimp-colorize) and
Filters > Colorize > Add Color Hints Layer (plug-in-gimp-colorize-hints-layer).

Only wiring lives here; colorize_flow does the work through gimp2_host. Both are installed beside
this file (see plugin/README.md). Python 2.7.
"""

from __future__ import absolute_import, division, print_function

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the helpers sit beside this file

from gimpfu import (PF_DRAWABLE, PF_FILENAME, PF_IMAGE, PF_LAYER, PF_OPTION, PF_RADIO, PF_SLIDER,  # noqa: E402
                    PF_SPINNER, PF_TOGGLE, main, register)

import colorize_flow  # noqa: E402
import colorize_inputs  # noqa: E402
import gimp_colorize_client as client_lib  # noqa: E402
from gimp2_host import Gimp2Host  # noqa: E402

MODES = colorize_flow.MODES
OUTPUTS = colorize_flow.OUTPUTS
HINTS = colorize_flow.HINTS_CHOICES
REFERENCES = colorize_flow.REFERENCE_CHOICES
BOXES = colorize_flow.BOX_CHOICES


def installed_models():
    """The backend's models index, read when GIMP registers or runs the plug-in; None without one."""
    try:
        return client_lib.load_models_index(client_lib.load_config())
    except client_lib.ClientError:
        return None  # a broken config.json is reported when the filter runs


def colorize(image, drawable, mode_index, model, vibrancy, output_index, samples, seed, hints_index, hints_layer,
             reference_index, reference_image, reference_file, reference_strength, boxes_index, instance_layers):
    settings = colorize_flow.Settings(
        mode=MODES[int(mode_index)], model=model or "", vibrancy=vibrancy, output=OUTPUTS[int(output_index)],
        samples=int(samples), seed=int(seed), hints=HINTS[int(hints_index)], hints_layer=hints_layer,
        reference=REFERENCES[int(reference_index)], reference_image=reference_image,
        reference_file=reference_file or None, reference_strength=reference_strength,
        boxes=BOXES[int(boxes_index)], instance_layers=bool(instance_layers))
    # Failures raise ClientError, whose message is the whole story. gimpfu shows it in its error dialog
    # (the traceback stays folded under "More Information"), and a script calling the procedure gets an
    # error status instead of a silent success.
    colorize_flow.colorize(Gimp2Host(), image, drawable, settings)


def add_hints_layer(image, drawable):
    colorize_inputs.add_hints_layer(Gimp2Host(), image, drawable)


def _labels(choices, labels):
    return [labels[choice] for choice in choices]


# gimpfu shows each description as the label (with its _mnemonic) and as the tooltip; its buttons take
# _Cancel and _OK, so no label may use c or o.
INDEX = installed_models()
register(
    "plug-in-gimp-colorize",
    colorize_flow.DESCRIPTION,
    colorize_flow.DESCRIPTION + " With a selection, only the selected area gets color (in Object by object mode "
    "with objects found from the selection, the selection marks the objects instead and the whole layer gets "
    "color). A Color hints layer (Add Color Hints Layer) steers the colors; a reference photo lends its colors. "
    "The first run starts the gimp-colorize service on this computer, which takes a few seconds. Repeat on a "
    "layer this filter made colorizes the layer it was made from again.",
    "gimp-colorize authors",
    "GPL-3.0-or-later",
    "2026",
    colorize_flow.TITLE + "...",
    "RGB*, GRAY*",
    [
        (PF_IMAGE, "image", "Input image", None),
        (PF_DRAWABLE, "drawable", "Layer to colorize", None),
        (PF_OPTION, "mode", "_Mode", 0, [label for _, label, _ in colorize_flow.mode_choices(INDEX)]),
        (PF_RADIO, "model", "Mo_del", colorize_flow.DEFAULT_MODEL, tuple(
            (label, name) for name, label in colorize_flow.model_choices(INDEX))),
        (PF_SLIDER, "vibrancy", "_Vibrancy (1 = the model's own colors, 0 = gray)", colorize_flow.DEFAULT_VIBRANCY,
         (colorize_flow.VIBRANCY_MIN, colorize_flow.VIBRANCY_MAX, 0.05)),
        (PF_OPTION, "output", "_Add as", 0, _labels(OUTPUTS, colorize_flow.OUTPUT_LABELS)),
        (PF_SPINNER, "samples", "_Number of variants (Several variants mode)", 1, (1, colorize_flow.MAX_SAMPLES, 1)),
        (PF_SPINNER, "seed", "S_eed (-1: a new one each run; Several variants mode)", colorize_flow.RANDOM_SEED,
         (colorize_flow.RANDOM_SEED, colorize_flow.MAX_SEED, 1)),
        (PF_OPTION, "hints", "Color _hints", 0, _labels(HINTS, colorize_flow.HINTS_LABELS)),
        (PF_LAYER, "hints_layer", "Hints _layer (when Color hints is \"%s\")" % colorize_flow.HINTS_LABELS["layer"],
         None),
        (PF_OPTION, "reference", "_Reference photo", 0, _labels(REFERENCES, colorize_flow.REFERENCE_LABELS)),
        (PF_IMAGE, "reference_image", "Reference _image (when Reference photo is an open image)", None),
        (PF_FILENAME, "reference_file", "Reference _file (when Reference photo is a file)", ""),
        (PF_SLIDER, "reference_strength", "Reference _strength (1 = follow it fully)", 1.0, (0.0, 1.0, 0.05)),
        (PF_OPTION, "boxes", "Find o_bjects (Object by object mode)", 0, _labels(BOXES, colorize_flow.BOX_LABELS)),
        (PF_TOGGLE, "instance_layers", "A layer per ob_ject (Object by object mode)", False),
    ],
    [],
    colorize,
    menu="<Image>/Filters/Colorize",
)
register(
    "plug-in-gimp-colorize-hints-layer",
    colorize_flow.HINTS_DESCRIPTION,
    colorize_flow.HINTS_DESCRIPTION + " A gray image becomes RGB, so that colors can be painted.",
    "gimp-colorize authors",
    "GPL-3.0-or-later",
    "2026",
    colorize_flow.HINTS_TITLE,
    "RGB*, GRAY*",
    [
        (PF_IMAGE, "image", "Input image", None),
        (PF_DRAWABLE, "drawable", "The photo's layer", None),
    ],
    [],
    add_hints_layer,
    menu="<Image>/Filters/Colorize",
)

main()
