#!/usr/bin/env python2
# -*- coding: utf-8 -*-
"""GIMP 2.10 Python-Fu plug-in: Filters > Colorize > Colorize Photo (AI)... (procedure plug-in-gimp-colorize).

Only wiring lives here; colorize_flow does the work through gimp2_host. Both are installed beside
this file (see plugin/README.md). Python 2.7.
"""

from __future__ import absolute_import, division, print_function

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the helpers sit beside this file

from gimpfu import (PF_DRAWABLE, PF_IMAGE, PF_OPTION, PF_RADIO, PF_SLIDER, PF_SPINNER, main,  # noqa: E402
                    register)

import colorize_flow  # noqa: E402
import gimp_colorize_client as client_lib  # noqa: E402
from gimp2_host import Gimp2Host  # noqa: E402

MODES = colorize_flow.MODES
OUTPUTS = colorize_flow.OUTPUTS


def installed_models():
    """The backend's models index, read when GIMP registers or runs the plug-in; None without one."""
    try:
        return client_lib.load_models_index(client_lib.load_config())
    except client_lib.ClientError:
        return None  # a broken config.json is reported when the filter runs


def colorize(image, drawable, mode_index, model, vibrancy, output_index, samples):
    settings = colorize_flow.Settings(
        mode=MODES[int(mode_index)],
        model=model or "",
        vibrancy=vibrancy,
        output=OUTPUTS[int(output_index)],
        samples=int(samples),
    )
    # Failures raise ClientError, whose message is the whole story. gimpfu shows it in its error dialog
    # (the traceback stays folded under "More Information"), and a script calling the procedure gets an
    # error status instead of a silent success.
    colorize_flow.colorize(Gimp2Host(), image, drawable, settings)


# gimpfu shows each description as the label (with its _mnemonic) and as the tooltip; its buttons take
# _Cancel and _OK, so no label may use c or o.
INDEX = installed_models()
register(
    "plug-in-gimp-colorize",
    colorize_flow.DESCRIPTION,
    colorize_flow.DESCRIPTION + " With a selection, only the selected area gets color. The first run starts the "
    "gimp-colorize service on this computer, which takes a few seconds. Repeat on a layer this filter made "
    "colorizes the layer it was made from again.",
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
        (PF_OPTION, "output", "_Add as", 0, [colorize_flow.OUTPUT_LABELS[output] for output in OUTPUTS]),
        (PF_SPINNER, "samples", "_Number of variants (Several variants mode)", 1, (1, colorize_flow.MAX_SAMPLES, 1)),
    ],
    [],
    colorize,
    menu="<Image>/Filters/Colorize",
)

main()
