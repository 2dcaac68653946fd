"""A stub of GIMP 2.10's gimpfu for tests: register() checks its arguments the way gimpfu does and
makes the procedure callable through the stub pdb (pdb.plug_in_gimp_colorize(image, drawable, ...)),
with the same argument checks the PDB applies. main() only records that it was called.
"""

from __future__ import absolute_import, division, print_function

import sys
import traceback

import gimp
from gimpenums import *  # noqa: F401,F403  (gimpfu re-exports the enums too)
from gimpenums import RUN_INTERACTIVE, RUN_WITH_LAST_VALS

pdb = gimp.pdb

PF_INT, PF_FLOAT, PF_STRING = 0, 3, 4
PF_IMAGE, PF_LAYER, PF_CHANNEL, PF_DRAWABLE = 13, 14, 15, 16
PF_TOGGLE, PF_SLIDER, PF_SPINNER, PF_RADIO, PF_FILENAME, PF_OPTION = 1000, 1001, 1002, 1008, 1011, 1013  # 2.10's
_PARAM_TYPES = (PF_INT, PF_FLOAT, PF_STRING, PF_IMAGE, PF_LAYER, PF_CHANNEL, PF_DRAWABLE, PF_TOGGLE, PF_SLIDER,
                PF_SPINNER, PF_RADIO, PF_FILENAME, PF_OPTION)
DIALOG_BUTTON_MNEMONICS = ("c", "o")  # gimpfu's dialog: _Cancel and _OK

registered = {}
main_called = []


class CallingError(gimp.error):
    """What the PDB reports when a procedure is called with wrong arguments."""


def register(proc_name, blurb, help, author, copyright, date, label, imagetypes, params, results, function,
             menu=None, domain=None, on_query=None, on_run=None):
    if not (proc_name.startswith("plug-in-") or proc_name.startswith("python-fu-")):
        proc_name = "python-fu-" + proc_name
    if menu is not None and not menu.startswith("<"):
        raise gimp.error("menu path %r must start with <Image>, <Toolbox>, ..." % menu)
    names = set()
    for param in params:
        kind, name = param[0], param[1]
        if kind not in _PARAM_TYPES or name in names or len(param) < 4:
            raise gimp.error("parameter %r is malformed" % (param,))
        names.add(name)
        if kind in (PF_SLIDER, PF_SPINNER, PF_OPTION, PF_RADIO) and len(param) != 5:
            raise gimp.error("parameter %s needs extra data (range or options)" % name)
        if kind == PF_RADIO and param[3] not in [value for _, value in param[4]]:
            raise gimp.error("parameter %s: the default %r is none of the radio values" % (name, param[3]))
    registered[proc_name] = dict(blurb=blurb, label=label, imagetypes=imagetypes, params=params, menu=menu,
                                 function=function)
    pdb.procedures[proc_name] = lambda run_mode, *args: _run(proc_name, run_mode, args)


def main():
    main_called.append(True)


last_values = {}


def _run(proc_name, run_mode, args):
    """Interactive runs stand for "the user pressed OK with these values": like gimpfu's _interact, an
    exception then shows error_dialog (recorded in error_dialogs) and still fails the call. Both save the
    values; RUN_WITH_LAST_VALS (Filters > Repeat) takes image and drawable and reuses the saved rest."""
    entry = registered[proc_name]
    params = entry["params"]
    if run_mode == RUN_WITH_LAST_VALS:
        args = tuple(args[:2]) + tuple(last_values.get(proc_name, [p[3] for p in params])[2:])
    if len(args) != len(params):
        raise CallingError("%s takes %d arguments, got %d" % (proc_name, len(params), len(args)))
    checked = [_check(param, value) for param, value in zip(params, args)]
    if run_mode == RUN_INTERACTIVE:
        last_values[proc_name] = list(checked)
    if run_mode != RUN_INTERACTIVE:
        return entry["function"](*checked)
    try:
        return entry["function"](*checked)
    except Exception:
        _error_dialog(proc_name)
        raise


error_dialogs = []


def _error_dialog(proc_name):
    """gimpfu's error_dialog: the exception's one-line summary as the text, the traceback folded away."""
    kind, value, trace = sys.exc_info()
    error_dialogs.append({
        "title": "An error occurred running %s" % proc_name,
        "text": "".join(traceback.format_exception_only(kind, value)),
        "more_information": "".join(traceback.format_exception(kind, value, trace)),
    })


def _check(param, value):
    """The PDB's checks. Image, layer and drawable arguments of plug-ins may be None (an id of -1): GIMP 2.10
    registers them with none_ok (app/pdb/gimp-pdb-compat.c)."""
    kind, name = param[0], param[1]
    if kind == PF_IMAGE and not (value is None or isinstance(value, gimp.Image)):
        raise CallingError("%s must be an image" % name)
    if kind in (PF_DRAWABLE, PF_LAYER) and not (value is None or isinstance(value, gimp.Drawable)):
        raise CallingError("%s must be a drawable" % name)
    if kind == PF_LAYER and value is not None and not isinstance(value, gimp.Layer):
        raise CallingError("%s must be a layer" % name)
    if kind in (PF_STRING, PF_RADIO, PF_FILENAME) and not isinstance(value, str):  # PDB_STRING
        raise CallingError("%s must be a string" % name)
    if kind in (PF_INT, PF_SPINNER, PF_OPTION, PF_TOGGLE) and (isinstance(value, float) or not int(value) == value):
        raise CallingError("%s must be an integer" % name)
    if kind == PF_OPTION and not 0 <= value < len(param[4]):
        raise CallingError("%s: option %d out of range" % (name, value))
    if kind in (PF_SLIDER, PF_SPINNER) and not param[4][0] <= value <= param[4][1]:
        raise CallingError("%s: %s outside %s..%s" % (name, value, param[4][0], param[4][1]))
    return float(value) if kind in (PF_FLOAT, PF_SLIDER) else value

