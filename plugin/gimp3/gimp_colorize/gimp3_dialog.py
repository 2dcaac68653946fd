"""The GIMP 3 plug-in's dialog: GimpUi.ProcedureDialog with the arguments, plus what GIMP does not do by itself.

- A line at the top saying what the filter does.
- Modes without an installed model stay in the menu, marked "(no model installed)" and insensitive
  (only here: a script asking for such a mode must get the daemon's explanation, not another mode).
- The model menu offers the models of the chosen mode; Variants shows only in Several variants mode.
"""

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import Gimp, GimpUi, GObject, Gtk  # noqa: E402

import colorize_flow  # noqa: E402

BINARY = "gimp_colorize"


def confirmed(procedure, config, index, model_index):
    """Show the dialog; True when the user pressed OK (config then holds the values, `model` included)."""
    GimpUi.init(BINARY)
    dialog = build(procedure, config, index, model_index)
    ok = dialog.run()
    if ok:
        config.set_property("model", colorize_flow.model_choices(index)[config.get_property(model_index)][0])
    dialog.destroy()
    return ok


def build(procedure, config, index, model_index):
    limit_modes_to_installed(procedure, config, index)
    models = colorize_flow.model_choices(index)
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title=colorize_flow.TITLE)
    combo = dialog.get_int_combo(model_index, model_store(models))
    dialog.get_spin_scale("vibrancy", 1.0)  # a slider over 0..2 rather than a bare number
    for menu in ("mode", "output"):  # GIMP 3.2 makes radio buttons of short choices, without a mnemonic
        dialog.get_widget(menu, Gtk.ComboBox.__gtype__)
    dialog.fill(["mode", model_index, "vibrancy", "output", "samples"])
    add_description(dialog)
    follow_mode(dialog, config, index, models, model_index, combo.get_widget())
    return dialog


def limit_modes_to_installed(procedure, config, index):
    installed = [mode for mode, _, ok in colorize_flow.mode_choices(index) if ok]
    if not installed:
        return  # nothing to choose from: let the run explain what to install
    choice = Gimp.param_spec_choice_get_choice(procedure.find_argument("mode"))
    for mode in colorize_flow.MODES:
        choice.set_sensitive(mode, mode in installed)
    if config.get_property("mode") not in installed:
        config.set_property("mode", installed[0])


def model_store(models):
    # Not GimpUi.IntStore(): PyGObject's ListStore __init__ sets the columns a second time (a Gtk-CRITICAL).
    store = GObject.new(GimpUi.IntStore)
    for number, (_, label) in enumerate(models):
        row = store.append()
        store.set_value(row, GimpUi.IntStoreColumns.VALUE, number)
        store.set_value(row, GimpUi.IntStoreColumns.LABEL, label)
    return store


def add_description(dialog):
    label = Gtk.Label(label=colorize_flow.DESCRIPTION, xalign=0.0, wrap=True, max_width_chars=48)
    label.set_margin_bottom(6)
    area = dialog.get_content_area()
    area.pack_start(label, False, False, 0)
    area.reorder_child(label, 0)
    label.show()


def follow_mode(dialog, config, index, models, model_index, combo):
    """Keep the model menu and the Variants field in step with the mode."""
    names = [name for name, _ in models]
    samples = dialog.get_widget("samples", GObject.TYPE_NONE)
    last = config.get_property("model")  # the model used last time, by name
    if last in names:
        config.set_property(model_index, names.index(last))

    def of_mode():
        mode = config.get_property("mode")
        return [model["name"] for model in index.models_for(mode)] if index is not None else []

    def sensitive(number, *_):
        return number == 0 or names[number] in of_mode()  # 0: "Default for the mode"

    def update(*_):
        mode = config.get_property("mode")
        if names[config.get_property(model_index)] not in of_mode():
            default = index.default_for(mode) if index is not None else None
            config.set_property(model_index, names.index(default) if default in names else 0)
        samples.set_visible(mode == "diverse")

    combo.set_sensitivity(sensitive)
    config.connect("notify::mode", update)
    update()
