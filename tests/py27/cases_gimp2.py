"""The GIMP 2.10 plug-in itself, loaded through the gimpfu stub and called like the PDB would. Python 2.7 and 3."""

from __future__ import absolute_import, division, print_function

import json
import os
import sys

from support import PLUGIN_GIMP2, DaemonTestCase

import gimp
import gimp_colorize_client as client_lib
import gimpfu

PROCEDURE = "plug-in-gimp-colorize"


def load_plugin():
    """Execute plugin/gimp2/gimp_colorize.py as GIMP does (as a script: register() then main())."""
    path = os.path.join(PLUGIN_GIMP2, "gimp_colorize.py")
    with open(path) as handle:
        code = compile(handle.read(), path, "exec")
    namespace = {"__name__": "__main__", "__file__": path}
    saved_path = list(sys.path)
    sys.path.insert(0, PLUGIN_GIMP2)  # as when GIMP runs the script: its folder comes first
    try:
        exec(code, namespace)
    finally:
        sys.path[:] = saved_path  # the plug-in's gimp_colorize.py must not shadow the backend package
    return namespace


class Gimp2Case(DaemonTestCase):
    """A gray image with one layer in the stub, the plug-in registered, the fake daemon running."""

    def setUp(self):
        DaemonTestCase.setUp(self)
        gimp.reset_records()
        del gimpfu.main_called[:]
        self.plugin = load_plugin()
        self.image = gimp.Image(5, 4, gimp.GRAY)
        self.source = gimp.Layer(self.image, "scan", 5, 4, gimpfu.GRAY_IMAGE)
        self.source.data = bytes(bytearray(range(0, 200, 10)))
        gimp.pdb.gimp_image_insert_layer(self.image, self.source, None, 0)
        self.original = self.source.data
        self.steps_before = self.image.undo_steps

    def call(self, run_mode=gimpfu.RUN_NONINTERACTIVE, drawable=None, **values):
        """The procedure with its registered defaults, `values` by argument name."""
        params = gimpfu.registered[PROCEDURE]["params"][2:]
        unknown = set(values) - set(param[1] for param in params)
        assert not unknown, unknown
        args = [values.get(param[1], param[3]) for param in params]
        gimp.pdb.plug_in_gimp_colorize(self.image, drawable or self.source, *args, run_mode=run_mode)


class Gimp2PluginTest(Gimp2Case):

    def test_registers_the_procedure_in_the_filters_colorize_menu(self):
        entry = gimpfu.registered[PROCEDURE]
        self.assertEqual(entry["menu"], "<Image>/Filters/Colorize")
        self.assertEqual(entry["imagetypes"], "RGB*, GRAY*")
        self.assertEqual(entry["label"], "Colorize Photo (AI)...")  # not Colors > Colorize, GIMP's tint tool
        self.assertEqual([p[1] for p in entry["params"]],
                         ["image", "drawable", "mode", "model", "vibrancy", "output", "samples", "seed", "hints",
                          "hints_layer", "reference", "reference_image", "reference_file", "reference_strength",
                          "boxes", "instance_layers"])
        self.assertEqual(gimpfu.main_called, [True])
        self.assertTrue(entry["blurb"].startswith("Adds natural colors to a black-and-white photo"))

    def test_dialog_labels_have_distinct_mnemonics_and_speak_us_english(self):
        labels = [param[2] for param in gimpfu.registered[PROCEDURE]["params"][2:]]
        mnemonics = [label.split("_", 1)[1][0].lower() for label in labels if "_" in label]
        self.assertEqual(len(mnemonics), len(labels), labels)
        self.assertEqual(len(set(mnemonics)), len(mnemonics), labels)
        self.assertFalse(set(mnemonics) & set(gimpfu.DIALOG_BUTTON_MNEMONICS), labels)
        words = " ".join(labels + [label for param in gimpfu.registered[PROCEDURE]["params"][2:] if len(param) > 4
                                   for label in (param[4] if isinstance(param[4], list) else [])])
        self.assertNotIn("olour", words)

    def test_vibrancy_slider_defaults_to_the_models_own_colors(self):
        vibrancy = [p for p in gimpfu.registered[PROCEDURE]["params"] if p[1] == "vibrancy"][0]
        self.assertEqual((vibrancy[0], vibrancy[3], vibrancy[4][:2]), (gimpfu.PF_SLIDER, 1.0, (0.0, 2.0)))
        self.call(vibrancy=1.5)
        self.assertEqual(self.requests("POST")[0][2]["vibrancy"], "1.5")

    def test_adds_a_colour_layer_above_the_untouched_source_in_one_undo_step(self):
        self.call()
        self.assertEqual([layer.name for layer in self.image.layers], ["Colorized: tiny-full", "scan"])
        layer = self.image.layers[0]
        self.assertEqual((layer.type, layer.mode, layer.width, layer.height), (gimpfu.RGB_IMAGE,
                                                                               gimpfu.LAYER_MODE_NORMAL, 5, 4))
        self.assertEqual(bytearray(layer.data[:6]), bytearray([40, 0, 0, 50, 10, 0]))
        self.assertEqual(self.image.base_type, gimp.RGB)
        self.assertEqual(self.source.data[0::3], self.original)
        self.assertEqual(self.image.undo_steps - self.steps_before, 1)
        self.assertEqual(gimp.progress_values[-1], 1.0)
        self.assertEqual(gimp.messages, [])

    def test_selection_and_color_layer_output(self):
        gimp.pdb.gimp_image_select_rectangle(self.image, gimpfu.CHANNEL_OP_REPLACE, 1, 2, 3, 2)
        self.call(output=1)
        layer = self.image.layers[0]
        self.assertEqual((layer.offsets, layer.width, layer.height), ((1, 2), 3, 2))
        self.assertEqual(layer.mode, gimpfu.LAYER_MODE_LCH_COLOR)
        self.assertEqual(bytearray(layer.mask.data), bytearray([255] * 6))
        self.assertEqual(bytearray(layer.data)[1], bytearray(self.original)[2 * 5 + 1])

    def test_failure_is_an_error_with_a_sentence_and_changes_nothing(self):
        with self.assertRaises(client_lib.ModelNotAvailable) as caught:
            self.call(mode=1)  # instance: no model installed in the fake daemon
        self.assertIn("No model for the mode \"Object by object\" is installed", str(caught.exception))
        self.assertEqual(len(self.image.layers), 1)
        self.assertEqual(self.image.base_type, gimp.GRAY)
        self.assertEqual(self.image.undo_steps, self.steps_before)

    def test_interactive_failure_shows_the_sentence_as_the_dialog_text(self):
        del gimpfu.error_dialogs[:]
        self.assertRaises(client_lib.ModelNotAvailable, self.call, mode=1, run_mode=gimpfu.RUN_INTERACTIVE)
        dialog = gimpfu.error_dialogs[0]
        self.assertIn("No model for the mode \"Object by object\" is installed", dialog["text"])
        self.assertNotIn("Traceback", dialog["text"])
        self.assertEqual(len(self.image.layers), 1)

    def test_the_pdb_rejects_out_of_range_arguments(self):
        self.assertRaises(gimpfu.CallingError, self.call, mode=3)
        self.assertRaises(gimpfu.CallingError, self.call, vibrancy=2.5)
        self.assertEqual(len(self.image.layers), 1)

    def test_repeat_on_the_new_layer_colorizes_the_source_again(self):
        self.call(run_mode=gimpfu.RUN_INTERACTIVE, vibrancy=1.5)
        result = self.image.layers[0]
        gimp.pdb.plug_in_gimp_colorize(self.image, result, run_mode=gimpfu.RUN_WITH_LAST_VALS)  # Ctrl+F
        self.assertEqual([layer.name for layer in self.image.layers],
                         ["Colorized: tiny-full, vibrancy 1.5 (2)", "Colorized: tiny-full, vibrancy 1.5", "scan"])
        self.assertEqual([query["format"] for _, _, query in self.requests("POST")], ["gray8", "gray8"])
        self.assertEqual(self.image.layers[0].data, result.data)
        self.assertIn(b'"source_name": "scan"', self.image.layers[0].parasite_find("gimp-colorize-result").data)


class Gimp2ModesTest(Gimp2Case):
    """Colour hints, reference photos, diverse groups and instance objects through the GIMP 2.10 plug-in."""

    HINTS = "plug_in_gimp_colorize_hints_layer"

    def add_hints(self, drawable=None):
        getattr(gimp.pdb, self.HINTS)(self.image, drawable or self.source, run_mode=gimpfu.RUN_INTERACTIVE)
        return self.image.active_layer

    def test_add_color_hints_layer_is_registered_beside_the_filter(self):
        entry = gimpfu.registered["plug-in-gimp-colorize-hints-layer"]
        self.assertEqual((entry["menu"], entry["label"]), ("<Image>/Filters/Colorize", "Add Color Hints Layer"))
        self.assertEqual([param[1] for param in entry["params"]], ["image", "drawable"])
        self.assertIn("a gray dot keeps a place neutral", entry["blurb"])

    def test_the_hints_layer_is_transparent_above_the_photo_and_colorize_follows_it(self):
        hints = self.add_hints()
        self.assertEqual([layer.name for layer in self.image.layers], ["Color hints", "scan"])
        self.assertEqual((hints.type, hints.offsets, hints.width, hints.height), (gimpfu.RGBA_IMAGE, (0, 0), 5, 4))
        self.assertEqual(hints.data, bytes(bytearray(5 * 4 * 4)))
        self.assertEqual(self.image.base_type, gimp.RGB)
        self.assertEqual(self.image.undo_steps - self.steps_before, 1)
        painted = bytearray(hints.data)
        painted[(1 * 5 + 2) * 4:(1 * 5 + 2) * 4 + 4] = bytearray([10, 200, 30, 255])
        hints.data = bytes(painted)
        self.call()
        self.assertEqual([layer.name for layer in self.image.layers], ["Color hints", "Colorized: tiny-full", "scan"])
        result = self.image.layers[1]
        self.assertEqual(bytearray(result.data)[(1 * 5 + 2) * 3:(1 * 5 + 2) * 3 + 3], bytearray([10, 200, 30]))
        self.assertEqual(hints.data, bytes(painted))
        self.assertEqual(self.requests("POST")[-1][2]["hints"], "input1")

    def test_diverse_samples_land_in_a_layer_group(self):
        self.daemon.models["diverse"] = "tiny-diverse"
        self.call(mode=2, samples=3, seed=21)
        group = self.image.layers[0]
        self.assertTrue(gimp.pdb.gimp_item_is_group(group))
        self.assertEqual(group.name, "Colorize: diverse (tiny-diverse)")
        self.assertEqual([layer.name for layer in group.layers],
                         ["sample 1 (seed 21)", "sample 2 (seed 22)", "sample 3 (seed 23)"])
        self.assertEqual([layer.visible for layer in group.layers], [True, False, False])
        self.assertEqual(self.image.undo_steps - self.steps_before, 1)

    def test_two_selected_areas_mark_two_objects_with_instance_layers(self):
        self.daemon.models["instance"] = "tiny-instance"
        gimp.pdb.gimp_image_select_rectangle(self.image, gimpfu.CHANNEL_OP_REPLACE, 0, 0, 2, 1)
        gimp.pdb.gimp_image_select_rectangle(self.image, gimpfu.CHANNEL_OP_ADD, 3, 2, 2, 2)
        self.call(mode=1, boxes=1, instance_layers=True)
        query = self.requests("POST")[-1][2]
        self.assertEqual((query["boxes"], query["width"], query["height"]), ("selection", "5", "4"))
        mask = bytearray(self.daemon.inputs[query["selection"]][3])
        self.assertEqual([i for i, value in enumerate(mask) if value], [0, 1, 13, 14, 18, 19])
        self.assertEqual([layer.name for layer in self.image.layers],
                         ["Colorized: tiny-instance, 2 objects", "Instances", "scan"])
        self.assertIsNone(self.image.layers[0].mask)  # the whole layer is colorized
        group = self.image.layers[1]
        self.assertEqual([layer.mask.data.count(b"\xff") for layer in group.layers], [4, 2])

    def test_a_reference_image_and_file_lend_their_colors(self):
        reference = gimp.Image(2, 2, gimp.RGB)
        reference.name = "beach.jpg"
        background = gimp.Layer(reference, "Background", 2, 2, gimpfu.RGB_IMAGE)
        background.data = bytes(bytearray([220, 140, 60] * 4))
        gimp.pdb.gimp_image_insert_layer(reference, background, None, 0)
        self.call(reference=1, reference_image=reference, reference_strength=0.75)
        query = self.requests("POST")[-1][2]
        self.assertEqual(query["reference_strength"], "0.75")
        self.assertEqual(self.daemon.inputs[query["reference"]][3], background.data)
        gimp.files["/photos/beach.jpg"] = reference
        self.call(reference=2, reference_file="/photos/beach.jpg")
        self.assertTrue(reference.deleted)
        with self.assertRaises(client_lib.ClientError) as caught:
            self.call(reference=2, reference_file="/photos/missing.png")
        self.assertIn("Cannot open the reference photo /photos/missing.png (Could not open", str(caught.exception))


class Gimp2MenusTest(DaemonTestCase):
    """The option menus are built from the models index when GIMP registers (and runs) the plug-in."""

    def write_index(self, models):
        os.makedirs(os.path.join(self.tmp, "state"))
        self.write_file(os.path.join("state", "models-index.json"), json.dumps({"format": 1, "models": models}))

    def params(self):
        load_plugin()
        return dict((param[1], param) for param in gimpfu.registered[PROCEDURE]["params"])

    def test_modes_without_a_model_say_so_and_the_installed_models_are_offered(self):
        self.write_index([{"name": "tiny-full", "task": "full", "default": True, "verified": True},
                          {"name": "other-full", "task": "full", "default": False, "verified": True}])
        params = self.params()
        self.assertEqual(params["mode"][4], ["Whole photo", "Object by object (no model installed)",
                                             "Several variants (no model installed)"])
        self.assertEqual((params["model"][0], params["model"][3]), (gimpfu.PF_RADIO, "default"))
        self.assertEqual([value for _, value in params["model"][4]], ["default", "tiny-full", "other-full"])

    def test_without_an_index_every_mode_and_the_default_model_are_offered(self):
        params = self.params()
        self.assertEqual(params["mode"][4], ["Whole photo", "Object by object", "Several variants"])
        self.assertEqual(params["model"][4], (("Default for the mode", "default"),))
