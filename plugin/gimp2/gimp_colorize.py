#!/usr/bin/env python2
# -*- coding: utf-8 -*-
"""GIMP 2.10 Python-Fu plug-in: Filters > Colorize > Colorize (AI)... (procedure plug-in-gimp-colorize).

Only wiring lives here; colorize_flow does the work through gimp2_host. Both are installed beside
this file (see plugin/README.md). Python 2.7.
"""

from __future__ import absolute_import, division, print_function

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the helpers sit beside this file

from gimpfu import PF_DRAWABLE, PF_IMAGE, PF_OPTION, PF_SLIDER, PF_SPINNER, PF_STRING, main, register  # noqa: E402

import colorize_flow  # noqa: E402
from gimp2_host import Gimp2Host  # noqa: E402

MODE_LABELS = ["Full image", "Instance-aware", "Diverse (several layers)"]
OUTPUT_LABELS = ["RGB layer", "Colour layer (LCh Color mode, paintable)"]


def colorize(image, drawable, mode_index, model, temperature, output_index, samples):
    settings = colorize_flow.Settings(
        mode=colorize_flow.MODES[int(mode_index)],
        model=model or "",
        temperature=temperature,
        output=colorize_flow.OUTPUTS[int(output_index)],
        samples=int(samples),
    )
    # Failures raise ClientError, whose message is the whole story. gimpfu shows it in its error dialog
    # (the traceback stays folded under "More Information"), and a script calling the procedure gets an
    # error status instead of a silent success.
    colorize_flow.colorize(Gimp2Host(), image, drawable, settings)


register(
    "plug-in-gimp-colorize",
    "Colorize a black-and-white photo with a local AI model",
    "Adds the colorized result as new layer(s) directly above the selected layer, which is left unchanged. "
    "With a selection, only the selected area receives colour. Needs the gimp-colorize daemon, which the "
    "plug-in starts when it is not running.",
    "gimp-colorize authors",
    "GPL-3.0-or-later",
    "2026",
    "Colorize (AI)...",
    "RGB*, GRAY*",
    [
        (PF_IMAGE, "image", "Input image", None),
        (PF_DRAWABLE, "drawable", "Layer to colorize", None),
        (PF_OPTION, "mode", "Mode", 0, MODE_LABELS),
        (PF_STRING, "model", "Model (empty: default)", ""),
        (PF_SLIDER, "temperature", "Vibrancy (0: model default)", 0.0, (0.0, 1.0, 0.01)),
        (PF_OPTION, "output", "Output", 0, OUTPUT_LABELS),
        (PF_SPINNER, "samples", "Samples (diverse mode)", 1, (1, colorize_flow.MAX_SAMPLES, 1)),
    ],
    [],
    colorize,
    menu="<Image>/Filters/Colorize",
)

main()
