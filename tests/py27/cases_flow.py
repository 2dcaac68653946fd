"""colorize_flow driven through the fake host against the fake daemon. Python 2.7 and 3."""

from __future__ import absolute_import, division, print_function

import struct
import unittest

from support import DaemonTestCase

import colorize_flow
import gimp_colorize_client as client_lib
from colorize_flow import Settings
from fake_host import FakeHost, FakeImage


def gray_ramp(width, height):
    return bytes(bytearray((7 * i) % 256 for i in range(width * height)))


class FlowTest(DaemonTestCase):
    def setUp(self):
        DaemonTestCase.setUp(self)
        self.host = FakeHost()
        self.image = FakeImage(6, 4, gray=True)
        self.original = gray_ramp(6, 4)
        self.source = self.image.add_source("photo", self.original)

    def run_flow(self, **settings):
        return colorize_flow.colorize(self.host, self.image, self.source, Settings(**settings))

    def test_new_layer_above_the_source_named_after_mode_and_model(self):
        result = self.run_flow()
        self.assertEqual([layer.name for layer in self.image.layers], ["Colorized full (tiny-full)", "photo"])
        layer = self.image.layers[0]
        self.assertIs(result.layers[0], layer)
        self.assertEqual((layer.width, layer.height, layer.offsets, layer.blend), (6, 4, (0, 0), "normal"))
        self.assertEqual(layer.format, "rgb8")
        self.assertEqual(bytearray(layer.pixels[:6]), bytearray([40, 0, 0, 47, 7, 0]))  # the fake's colours

    def test_source_keeps_its_values_and_the_gray_image_becomes_rgb_in_one_undo_step(self):
        self.run_flow()
        self.assertFalse(self.image.gray)
        self.assertEqual(self.source.format, "rgb8")
        self.assertEqual(self.source.pixels[0::3], self.original)  # conversion copies gray into R, G and B
        self.assertEqual(self.image.undo_steps, 1)
        self.assertEqual(self.image.log[0], "convert_rgb")

    def test_progress_rises_to_one_and_ends(self):
        self.run_flow()
        self.assertEqual(self.host.progress, sorted(self.host.progress))
        self.assertEqual(self.host.progress[-1], 1.0)
        self.assertGreater(len(self.host.progress), 3)
        self.assertTrue(self.host.progress_ended)
        self.assertIn("Colorize: model", self.host.progress_texts)  # the daemon's stage

    def test_selection_limits_the_layer_to_its_bounds_with_a_mask(self):
        self.image.selection = (2, 1, 3, 2)
        self.run_flow()
        layer = self.image.layers[0]
        self.assertEqual((layer.offsets, layer.width, layer.height), ((2, 1), 3, 2))
        self.assertEqual(layer.mask, (2, 1, 3, 2))
        submitted = self.requests("POST")[0][2]
        self.assertEqual((submitted["width"], submitted["height"]), ("3", "2"))
        first_selected_gray = bytearray(self.original)[1 * 6 + 2]
        self.assertEqual(bytearray(layer.pixels)[1], first_selected_gray)  # G channel = the gray there

    def test_selection_outside_the_layer_is_refused_before_anything_is_sent(self):
        self.image.selection = (10, 10, 2, 2)
        with self.assertRaises(colorize_flow.UserError) as caught:
            self.run_flow()
        self.assertIn("selection does not overlap", caught.exception.message)
        self.assertEqual(self.requests("POST"), [])
        self.assertEqual(len(self.image.layers), 1)

    def test_layer_offsets_add_to_the_source_offsets(self):
        image = FakeImage(10, 10, gray=True)
        source = image.add_source("moved", gray_ramp(4, 3), offsets=(5, 6), size=(4, 3))
        image.selection = (6, 0, 10, 10)
        colorize_flow.colorize(self.host, image, source, Settings())
        self.assertEqual((image.layers[0].offsets, image.layers[0].width, image.layers[0].height), ((6, 6), 3, 3))

    def test_color_layer_output_uses_the_lch_color_blend_mode(self):
        self.run_flow(output="color-layer")
        self.assertEqual(self.image.layers[0].blend, colorize_flow.BLEND_LCH_COLOR)
        self.assertIn("color-layer", self.image.layers[0].name)

    def test_alpha_is_stripped_for_the_daemon_and_kept_on_the_new_layer(self):
        image = FakeImage(2, 1, gray=True)
        source = image.add_source("graya", bytes(bytearray([9, 255, 80, 0])), alpha=True)
        colorize_flow.colorize(self.host, image, source, Settings())
        self.assertEqual(self.requests("POST")[-1][2]["format"], "gray8")
        layer = image.layers[0]
        self.assertEqual(layer.format, "rgba8")
        self.assertEqual(bytearray(layer.pixels), bytearray([49, 9, 0, 255, 120, 80, 40, 0]))

    def test_high_bit_depths_round_trip_at_their_own_precision(self):
        for depth, pack in (("16", "<4H"), ("f32", "<4f")):
            image = FakeImage(2, 2, gray=True, depth=depth)
            values = (0, 1000, 30000, 65535) if depth == "16" else (0.0, 0.25, 0.5, 1.0)
            source = image.add_source("deep", struct.pack(pack, *values))
            colorize_flow.colorize(self.host, image, source, Settings())
            layer = image.layers[0]
            self.assertEqual(layer.format, "rgb" + depth)
            triples = struct.unpack(pack[0] + str(12) + pack[-1], layer.pixels)
            self.assertEqual(triples[0::3], values)

    def test_diverse_samples_become_layers_with_the_first_on_top(self):
        self.daemon.models["diverse"] = "tiny-diverse"
        self.run_flow(mode="diverse", samples=3)
        names = [layer.name for layer in self.image.layers]
        self.assertEqual(len(names), 4)
        self.assertTrue(names[0].endswith("#1") and names[2].endswith("#3") and names[3] == "photo", names)
        self.assertEqual(self.requests("POST")[0][2]["samples"], "3")
        self.assertEqual(self.image.undo_steps, 1)

    def test_daemon_error_leaves_the_image_untouched(self):
        with self.assertRaises(client_lib.ModelNotAvailable) as caught:
            self.run_flow(mode="instance")
        self.assertIn("No trained model is installed", caught.exception.message)
        self.assertEqual(len(self.image.layers), 1)
        self.assertTrue(self.image.gray)
        self.assertEqual(self.image.undo_steps, 0)
        self.assertTrue(self.host.progress_ended)

    def test_cancel_cancels_the_daemon_job_and_adds_nothing(self):
        self.daemon.polls_to_finish = 1000
        self.host.cancel_after = 2
        with self.assertRaises(client_lib.JobCancelled):
            self.run_flow()
        job_id = self.requests("POST") and list(self.daemon.jobs)[0]
        self.assertEqual(self.daemon.jobs[job_id].state, "cancelled")
        self.assertEqual(len(self.image.layers), 1)

    def test_bad_settings_are_refused_before_connecting(self):
        for settings in ({"mode": "sepia"}, {"output": "cmyk"}, {"samples": 0}, {"temperature": 3.0}):
            with self.assertRaises(colorize_flow.UserError):
                self.run_flow(**settings)
        self.assertEqual(self.daemon.requests, [])

    def test_temperature_zero_means_the_models_default(self):
        self.run_flow(temperature=0.0)
        self.run_flow(temperature=0.2)
        queries = [request[2] for request in self.requests("POST")]
        self.assertNotIn("temperature", queries[0])
        self.assertEqual(queries[1]["temperature"], "0.2")


class PixelBytesTest(unittest.TestCase):
    def test_split_and_join_alpha_round_trip_at_every_depth(self):
        for depth, size in (("8", 1), ("16", 2), ("f32", 4)):
            pixels = bytes(bytearray(range(2 * 3 * 2 * size)))  # 3 graya pixels... as 6 samples of `size`
            colour, colour_format, alpha = colorize_flow.split_alpha(pixels, "graya" + depth)
            self.assertEqual(colour_format, "gray" + depth)
            self.assertEqual(len(colour), len(alpha))
            rgb = bytearray()
            for i in range(0, len(colour), size):
                rgb += colour[i:i + size] * 3
            joined, joined_format = colorize_flow.join_alpha(bytes(rgb), "rgb" + depth, alpha)
            self.assertEqual(joined_format, "rgba" + depth)
            self.assertEqual(joined[0:size], pixels[0:size])
            self.assertEqual(joined[3 * size:4 * size], pixels[size:2 * size])

    def test_expected_size(self):
        self.assertEqual(colorize_flow.expected_size("rgba16", 3, 2), 48)
        self.assertEqual(colorize_flow.expected_size("grayf32", 3, 2), 24)
