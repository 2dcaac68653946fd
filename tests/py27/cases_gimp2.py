"""The GIMP 2.10 plug-in itself, loaded through the gimpfu stub and called like the PDB would. Python 2.7 and 3."""

from __future__ import absolute_import, division, print_function

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


class Gimp2PluginTest(DaemonTestCase):
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

    def call(self, mode=0, model="", temperature=0.0, output=0, samples=1, run_mode=gimpfu.RUN_NONINTERACTIVE):
        gimp.pdb.plug_in_gimp_colorize(self.image, self.source, mode, model, temperature, output, samples,
                                       run_mode=run_mode)

    def test_registers_the_procedure_in_the_filters_colorize_menu(self):
        entry = gimpfu.registered[PROCEDURE]
        self.assertEqual(entry["menu"], "<Image>/Filters/Colorize")
        self.assertEqual(entry["imagetypes"], "RGB*, GRAY*")
        self.assertIn("Colorize", entry["label"])
        self.assertEqual([p[1] for p in entry["params"]],
                         ["image", "drawable", "mode", "model", "temperature", "output", "samples"])
        self.assertEqual(gimpfu.main_called, [True])

    def test_adds_a_colour_layer_above_the_untouched_source_in_one_undo_step(self):
        self.call()
        self.assertEqual([layer.name for layer in self.image.layers], ["Colorized full (tiny-full)", "scan"])
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
        self.assertIn("No trained model is installed for mode 'instance'", str(caught.exception))
        self.assertEqual(len(self.image.layers), 1)
        self.assertEqual(self.image.base_type, gimp.GRAY)
        self.assertEqual(self.image.undo_steps, self.steps_before)

    def test_interactive_failure_shows_the_sentence_as_the_dialog_text(self):
        del gimpfu.error_dialogs[:]
        self.assertRaises(client_lib.ModelNotAvailable, self.call, mode=1, run_mode=gimpfu.RUN_INTERACTIVE)
        dialog = gimpfu.error_dialogs[0]
        self.assertIn("No trained model is installed for mode 'instance'", dialog["text"])
        self.assertNotIn("Traceback", dialog["text"])
        self.assertEqual(len(self.image.layers), 1)

    def test_the_pdb_rejects_out_of_range_arguments(self):
        self.assertRaises(gimpfu.CallingError, self.call, mode=3)
        self.assertRaises(gimpfu.CallingError, self.call, temperature=2.0)
        self.assertEqual(len(self.image.layers), 1)
