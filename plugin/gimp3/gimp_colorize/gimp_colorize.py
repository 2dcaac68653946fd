#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters > Colorize > Colorize Photo (AI)... (procedure plug-in-gimp-colorize) and
Filters > Colorize > Add Color Hints Layer (plug-in-gimp-colorize-hints-layer).

Only wiring lives here: the procedures (gimp3_procedures), the dialog (gimp3_dialog), and turning errors
into PDB return values. The work is done by colorize_flow and colorize_inputs (host-agnostic) through
gimp3_host (the GIMP 3 adapter); all are copied beside this file when installed (see plugin/README.md).
"""

import os
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio, GLib  # noqa: E402

import colorize_flow  # noqa: E402
import colorize_inputs  # noqa: E402
import gimp_colorize_client as client_lib  # noqa: E402
from gimp3_host import Gimp3Host  # noqa: E402
from gimp3_procedures import (HINTS_PROCEDURE, MODEL_CHOICE, PROCEDURE, configure, configure_hints,  # noqa: E402,F401
                              installed_models, settings_from)

HELP_DOMAIN = "gimp-colorize"
HELP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "help")  # <locale>/gimp-help.xml + pages


def _failure(procedure, message):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def _guarded(procedure, run_mode, work):
    """work(); a ClientError's sentence becomes the procedure's error, a bug a short message (traceback to the
    terminal)."""
    try:
        work()
    except client_lib.ClientError as exc:
        return _failure(procedure, exc.message)
    except Exception as exc:
        traceback.print_exc()
        return _failure(procedure, "gimp-colorize failed unexpectedly (%s: %s). Please report this."
                        % (type(exc).__name__, exc))
    if run_mode != Gimp.RunMode.NONINTERACTIVE:
        Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def _one_layer(drawables):
    return len(drawables) == 1 and isinstance(drawables[0], Gimp.Layer)


class ColorizePlugIn(Gimp.PlugIn):
    def do_query_procedures(self):
        self.set_help_domain(HELP_DOMAIN, Gio.File.new_for_path(HELP_DIR))
        return [PROCEDURE, HINTS_PROCEDURE]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        if name == HINTS_PROCEDURE:
            procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run_hints, None)
            configure_hints(procedure)
            return procedure
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
        self.index = installed_models()
        configure(procedure, self.index)
        return procedure

    def run(self, procedure, run_mode, image, drawables, config, run_data):
        if not _one_layer(drawables):
            return _failure(procedure, "Select exactly one layer to colorize.")
        if run_mode == Gimp.RunMode.INTERACTIVE:
            import gimp3_dialog  # GTK is loaded only when there is a dialog to show

            if not gimp3_dialog.confirmed(procedure, config, self.index, image, drawables[0]):
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        return _guarded(procedure, run_mode, lambda: colorize_flow.colorize(
            Gimp3Host(), image, drawables[0], settings_from(config)))

    def run_hints(self, procedure, run_mode, image, drawables, config, run_data):
        if not _one_layer(drawables):
            return _failure(procedure, "Select the photo's layer (exactly one) to add a Color hints layer above it.")
        return _guarded(procedure, run_mode, lambda: colorize_inputs.add_hints_layer(Gimp3Host(), image,
                                                                                     drawables[0]))


if __name__ == "__main__":
    Gimp.main(ColorizePlugIn.__gtype__, sys.argv)
