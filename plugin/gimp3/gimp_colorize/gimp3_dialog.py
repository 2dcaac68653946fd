"""The GIMP 3 plug-in's dialog: GimpUi.ProcedureDialog with the arguments, plus what GIMP does not do by itself.

- A line at the top saying what the filter does.
- Modes without an installed model stay in the menu, marked "(no model installed)" and insensitive
  (only here: a script asking for such a mode must get the daemon's explanation, not another mode).
- The model menu offers the models of the chosen mode.
- Color hints: a menu of this image's layers that can hold hints (the image's Color hints layer chosen
  when it has one); Reference photo: a menu of the other open images and "A file", whose chooser shows then.
- Fields show only where they apply: Variants and Seed in Several variants mode, Find objects and
  A layer per object in Object by object mode, with a line saying what the selection does there.
"""

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import Gimp, GimpUi, GObject, Gtk  # noqa: E402

import colorize_flow  # noqa: E402
import colorize_inputs  # noqa: E402
from gimp3_host import Gimp3Host  # noqa: E402
from gimp3_procedures import HINTS_CHOICE, MODEL_CHOICE, REFERENCE_CHOICE  # noqa: E402

BINARY = "gimp_colorize"
OBJECTS_NOTE = "objects-note"
A_FILE = "A file (choose it below)"
FIELDS = ["mode", MODEL_CHOICE, "vibrancy", "output", HINTS_CHOICE, REFERENCE_CHOICE, "reference-file",
          "reference-strength", "samples", "seed", "boxes", OBJECTS_NOTE, "instance-layers"]


def confirmed(procedure, config, index, image=None, drawable=None):
    """Show the dialog; True when the user pressed OK (config then holds the values, `model` included)."""
    GimpUi.init(BINARY)
    dialog, menus = build(procedure, config, index, image, drawable)
    ok = dialog.run()
    if ok:
        config.set_property("model", chosen_model(config, index))
        menus.store(config)
    dialog.destroy()
    return ok


def build(procedure, config, index, image=None, drawable=None):
    """The dialog and the menus it adds (Menus.store puts their choices into the arguments)."""
    limit_modes_to_installed(procedure, config, index)
    models = colorize_flow.model_choices(index)
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title=colorize_flow.TITLE)
    combo = dialog.get_int_combo(MODEL_CHOICE, int_store([label for _, label in models]))
    menus = Menus(config, image, drawable)
    menus.add_to(dialog)
    dialog.get_spin_scale("vibrancy", 1.0)  # a slider over 0..2 rather than a bare number
    dialog.get_spin_scale("reference-strength", 1.0)
    for menu in ("mode", "output", "boxes"):  # GIMP 3.2 makes radio buttons of short choices, without a mnemonic
        dialog.get_widget(menu, Gtk.ComboBox.__gtype__)
    note = dialog.get_label(OBJECTS_NOTE, colorize_flow.SELECTION_MARKS_OBJECTS, False, False)
    if isinstance(note, Gtk.Label):
        note.set_line_wrap(True)
        note.set_max_width_chars(48)
        note.set_xalign(0.0)
    dialog.fill(FIELDS)
    add_description(dialog)
    follow_mode(dialog, config, index, models, combo.get_widget(), menus)
    return dialog, menus


def chosen_model(config, index):
    """The model menu's choice by name; the mode's default model as "default", so that a run with colour hints
    or a reference gets the installed model that takes them (the daemon's guided default) rather than a
    default that cannot take them."""
    name = colorize_flow.model_choices(index)[config.get_property(MODEL_CHOICE)][0]
    if index is not None and name == index.default_for(config.get_property("mode")):
        return colorize_flow.DEFAULT_MODEL
    return name


def limit_modes_to_installed(procedure, config, index):
    installed = [mode for mode, _, ok in colorize_flow.mode_choices(index) if ok]
    if not installed:
        return  # nothing to choose from: let the run explain what to install
    choice = Gimp.param_spec_choice_get_choice(procedure.find_argument("mode"))
    for mode in colorize_flow.MODES:
        choice.set_sensitive(mode, mode in installed)
    if config.get_property("mode") not in installed:
        config.set_property("mode", installed[0])


def int_store(labels):
    # Not GimpUi.IntStore(): PyGObject's ListStore __init__ sets the columns a second time (a Gtk-CRITICAL).
    store = GObject.new(GimpUi.IntStore)
    for number, label in enumerate(labels):
        row = store.append()
        store.set_value(row, GimpUi.IntStoreColumns.VALUE, number)
        store.set_value(row, GimpUi.IntStoreColumns.LABEL, label)
    return store


class Menus(object):
    """The Color hints and Reference photo menus: lists of this image's layers and of the open images."""

    def __init__(self, config, image, drawable):
        host = Gimp3Host()
        self.hints, self.auto_hints = [(None, "None")], None
        self.references = [(None, "None")]
        if image is not None and drawable is not None:
            try:
                source = colorize_inputs.source_of(host, image, drawable)[0]
            except colorize_flow.UserError:
                source = drawable  # the run explains what is wrong with it
            self.hints = colorize_flow.hints_layer_choices(host, image, source)
            self.auto_hints = colorize_inputs.hints_layer_for(host, image, source, colorize_flow.Settings())
            others = [other for other in Gimp.get_images() if other.get_id() != image.get_id()]
            self.references += [(other, other.get_name()) for other in others]
        self.references.append(("file", A_FILE))
        config.set_property(HINTS_CHOICE, self._initial_hints(config, host))
        config.set_property(REFERENCE_CHOICE, self._initial_reference(config))

    def _initial_hints(self, config, host):
        """The image's hints layer whenever it has one (even after a run with None: the dialog shows the
        choice, so a new hints layer is used without being asked for)."""
        if self.auto_hints is None:
            return 0
        return [number for number, (layer, _) in enumerate(self.hints)
                if layer is not None and host.same_layer(layer, self.auto_hints)][0]

    def _initial_reference(self, config):
        if config.get_property("reference") == "file":
            return len(self.references) - 1
        chosen = config.get_property("reference-image")
        if config.get_property("reference") == "image" and chosen is not None:
            for number, (image, _) in enumerate(self.references[1:-1], 1):
                if image.get_id() == chosen.get_id():
                    return number
        return 0

    def add_to(self, dialog):
        dialog.get_int_combo(HINTS_CHOICE, int_store([label for _, label in self.hints]))
        dialog.get_int_combo(REFERENCE_CHOICE, int_store([label for _, label in self.references]))

    def store(self, config):
        """The menus' choices into the arguments scripts see (and Filters > Repeat reuses)."""
        layer = self.hints[config.get_property(HINTS_CHOICE)][0]
        if layer is None:  # None chosen over a hints layer; with none to choose, Repeat stays on "auto"
            config.set_property("hints", "none" if len(self.hints) > 1 else "auto")
        elif self.auto_hints is not None and layer.get_id() == self.auto_hints.get_id():
            config.set_property("hints", "auto")  # Repeat on another image finds that image's hints layer
        else:
            config.set_property("hints", "layer")
            config.set_property("hints-layer", layer)
        reference = self.references[config.get_property(REFERENCE_CHOICE)][0]
        if reference is None:
            config.set_property("reference", "none")
        elif reference == "file":
            config.set_property("reference", "file")
        else:
            config.set_property("reference", "image")
            config.set_property("reference-image", reference)

    def wants_file(self, config):
        return self.references[config.get_property(REFERENCE_CHOICE)][0] == "file"

    def has_reference(self, config):
        return self.references[config.get_property(REFERENCE_CHOICE)][0] is not None


def add_description(dialog):
    label = Gtk.Label(label=colorize_flow.DESCRIPTION, xalign=0.0, wrap=True, max_width_chars=48)
    label.set_margin_bottom(6)
    area = dialog.get_content_area()
    area.pack_start(label, False, False, 0)
    area.reorder_child(label, 0)
    label.show()


def follow_mode(dialog, config, index, models, combo, menus):
    """Keep the model menu and the fields that apply in step with the mode, the boxes and the reference."""
    names = [name for name, _ in models]
    shown = dict((name, dialog.get_widget(name, GObject.TYPE_NONE)) for name in (
        "samples", "seed", "boxes", "instance-layers", "reference-file", "reference-strength"))
    shown[OBJECTS_NOTE] = dialog.get_widget(OBJECTS_NOTE, GObject.TYPE_NONE)
    last = config.get_property("model")  # the model used last time, by name
    if last in names:
        config.set_property(MODEL_CHOICE, names.index(last))

    def of_mode():
        mode = config.get_property("mode")
        return [model["name"] for model in index.models_for(mode)] if index is not None else []

    def sensitive(number, *_):
        return number == 0 or names[number] in of_mode()  # 0: "Default for the mode"

    def update(*_):
        mode = config.get_property("mode")
        if names[config.get_property(MODEL_CHOICE)] not in of_mode():
            default = index.default_for(mode) if index is not None else None
            config.set_property(MODEL_CHOICE, names.index(default) if default in names else 0)
        visible = {"samples": mode == "diverse", "seed": mode == "diverse", "boxes": mode == "instance",
                   "instance-layers": mode == "instance",
                   OBJECTS_NOTE: mode == "instance" and config.get_property("boxes") != "auto",
                   "reference-file": menus.wants_file(config), "reference-strength": menus.has_reference(config)}
        for name, widget in shown.items():
            widget.set_visible(visible[name])

    combo.set_sensitivity(sensitive)
    for name in ("mode", "boxes", REFERENCE_CHOICE):
        config.connect("notify::" + name, update)
    update()
