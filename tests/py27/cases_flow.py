"""colorize_flow driven through the fake host against the fake daemon. Python 2.7 and 3."""

from __future__ import absolute_import, division, print_function

import json
import os
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
        self.assertEqual([layer.name for layer in self.image.layers], ["Colorized: tiny-full", "photo"])
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
        self.assertIn("Colorize Photo: colorizing", self.host.progress_texts)  # the daemon's "inference"

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
        self.assertIn("selection does not overlap the layer \"photo\"", caught.exception.message)
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
        self.assertEqual(self.image.layers[0].name, "Colorized: tiny-full, color only")

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

    def test_diverse_samples_become_layers_of_one_group_with_the_first_on_top(self):
        self.daemon.models["diverse"] = "tiny-diverse"
        self.run_flow(mode="diverse", samples=3, seed=40)
        group = self.image.layers[0]
        self.assertEqual([layer.name for layer in self.image.layers], ["Colorize: diverse (tiny-diverse)", "photo"])
        self.assertEqual([layer.name for layer in group.children],
                         ["sample 1 (seed 40)", "sample 2 (seed 41)", "sample 3 (seed 42)"])
        self.assertEqual(self.requests("POST")[0][2]["samples"], "3")
        self.assertEqual(self.image.undo_steps, 1)

    def test_an_older_daemon_without_groups_gets_numbered_layers(self):
        self.daemon.models["diverse"] = "tiny-diverse"
        self.daemon.groups = False
        self.run_flow(mode="diverse", samples=2)
        self.assertEqual([layer.name for layer in self.image.layers],
                         ["Colorized: tiny-diverse, sample 1 of 2", "Colorized: tiny-diverse, sample 2 of 2", "photo"])

    def test_daemon_error_leaves_the_image_untouched(self):
        with self.assertRaises(client_lib.ModelNotAvailable) as caught:
            self.run_flow(mode="instance")
        self.assertIn("No model for the mode \"Object by object\" is installed", caught.exception.message)
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
        for settings in ({"mode": "sepia"}, {"output": "cmyk"}, {"samples": 0}, {"vibrancy": 2.5},
                         {"vibrancy": -0.1}):
            with self.assertRaises(colorize_flow.UserError):
                self.run_flow(**settings)
        self.assertEqual(self.daemon.requests, [])

    def test_vibrancy_is_sent_and_one_is_the_default(self):
        self.run_flow()
        self.run_flow(vibrancy=1.5)
        self.run_flow(vibrancy=0.0)
        queries = [request[2] for request in self.requests("POST")]
        self.assertEqual([query["vibrancy"] for query in queries], ["1.0", "1.5", "0.0"])
        self.assertFalse(any("temperature" in query for query in queries))
        self.assertEqual([layer.name for layer in self.image.layers],  # each directly above the selected source
                         ["Colorized: tiny-full", "Colorized: tiny-full, vibrancy 1.5",
                          "Colorized: tiny-full, vibrancy 0", "photo"])


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


def write_models_index(case, models, user_dir="/home/u/.config/gimp-colorize/models"):
    state = os.path.join(case.tmp, "state")
    if not os.path.isdir(state):
        os.makedirs(state)
    case.write_file(os.path.join("state", "models-index.json"),
                    json.dumps({"format": 1, "models": models, "user_models_dir": user_dir}))


class RecordingHost(FakeHost):
    """Logs progress updates and layer insertions in one list, to check their order."""

    def __init__(self):
        FakeHost.__init__(self)
        self.events = []

    def progress_update(self, fraction):
        FakeHost.progress_update(self, fraction)
        self.events.append(("progress", fraction))

    def add_layer(self, *args, **kwargs):
        layer = FakeHost.add_layer(self, *args, **kwargs)
        self.events.append(("layer", layer.name))
        return layer


class UserFacingFlowTest(DaemonTestCase):
    def setUp(self):
        DaemonTestCase.setUp(self)
        self.host = RecordingHost()
        self.image = FakeImage(6, 4, gray=True)
        self.original = gray_ramp(6, 4)
        self.source = self.image.add_source("photo", self.original)

    def run_flow(self, drawable=None, **settings):
        return colorize_flow.colorize(self.host, self.image, drawable or self.source, Settings(**settings))

    def test_progress_texts_are_human_for_every_stage_and_unknown_ones_get_a_generic_one(self):
        self.daemon.stages = ("queued", "starting", "preprocess", "inference", "upsample_recombine", "detecting",
                              "instances", "fusing", "sampling", "some_new_stage")
        self.daemon.polls_to_finish = len(self.daemon.stages) + 1
        self.run_flow()
        texts = [text for text in self.host.progress_texts if text]
        for text in texts:
            self.assertTrue(text.startswith("Colorize Photo: "), text)
            self.assertNotIn("_", text)  # no internal stage names such as upsample_recombine
        for expected in ("loading the model", "preparing the photo", "colorizing", "applying the colors at full size",
                         "finding the objects", "coloring the objects one by one", "blending the objects into the photo",
                         "making the variants", "adding the new layer"):
            self.assertIn("Colorize Photo: " + expected, texts)

    def test_the_bar_reaches_one_only_once_the_layer_is_in_the_image(self):
        self.run_flow()
        events = self.host.events
        inserted = events.index(("layer", "Colorized: tiny-full"))
        before = [value for kind, value in events[:inserted] if kind == "progress"]
        self.assertLess(max(before), 1.0)
        self.assertEqual(events[-1], ("progress", 1.0))
        self.assertEqual(self.host.progress, sorted(self.host.progress))
        self.assertIn("Colorize Photo: converting the image to RGB", self.host.progress_texts)
        self.assertEqual(self.host.write_progress, [0.5, 1.0])  # the layer's writing moves the bar too

    def test_starting_the_service_is_said_and_the_bar_pulses(self):
        def connect(on_start=None):
            on_start()
            on_start()
            return client_lib.connect(start=False)

        colorize_flow.colorize(self.host, self.image, self.source, Settings(), connect=connect)
        self.assertIn("Colorize Photo: starting the colorization service (first run takes a few seconds)",
                      self.host.progress_texts)
        self.assertEqual(self.host.pulses, 2)

    def test_a_full_queue_shows_the_jobs_ahead_and_the_job_runs_when_there_is_room(self):
        self.daemon.busy_for, self.daemon.busy_jobs_ahead, self.daemon.retry_after = 1, 2, "0"  # clipped to 0.5 s
        self.daemon.queued_polls = 3
        self.run_flow()
        texts = self.host.progress_texts
        for expected in ("(2 jobs ahead)", "(1 job ahead)", "(next in line)"):
            self.assertIn("Colorize Photo: waiting for the daemon " + expected, texts)
        self.assertEqual(len(self.requests("POST")), 2)
        self.assertEqual(self.image.layers[0].name, "Colorized: tiny-full")

    def test_repeat_on_a_result_layer_colorizes_its_source_again_above_it_with_a_unique_name(self):
        self.run_flow()
        first = self.image.layers[0]
        self.run_flow(drawable=first)  # Filters > Repeat: the new layer is the selected one
        submitted = self.requests("POST")
        # the source, converted to RGB by the first run, goes out as gray again: its channels are equal
        self.assertEqual([query["format"] for _, _, query in submitted], ["gray8", "gray8"])
        second = self.image.layers[0]
        self.assertEqual([layer.name for layer in self.image.layers],
                         ["Colorized: tiny-full (2)", "Colorized: tiny-full", "photo"])
        self.assertEqual(second.pixels, first.pixels)  # the photo's colours, not colour-of-colour
        self.assertEqual(self.source.pixels[0::3], self.original)

    def test_every_result_layer_records_how_it_was_made(self):
        self.daemon.models["diverse"] = "tiny-diverse"
        self.run_flow(mode="diverse", samples=2, vibrancy=1.25, output="color-layer", seed=7)
        group = self.image.layers[0]
        self.assertEqual(group.name, "Colorize: diverse (tiny-diverse), color only, vibrancy 1.25")
        records = [json.loads(layer.parasites[colorize_flow.RESULT_PARASITE].decode("utf-8"))
                   for layer in group.children]
        for number, record in enumerate(records):
            self.assertEqual((record["mode"], record["model"], record["vibrancy"], record["output"], record["samples"],
                              record["sample"], record["seed"]),
                             ("diverse", "tiny-diverse", 1.25, "color-layer", 2, number + 1, 7 + number))
            self.assertEqual((record["source_tattoo"], record["source_name"], record["rect"], record["group"]),
                             (self.source.tattoo, "photo", [0, 0, 6, 4], group.name))
        self.assertIn(colorize_flow.RESULT_PARASITE, group.parasites)  # Repeat with the group selected works too
        self.assertEqual(self.image.undo_steps, 1)

    def test_an_rgb_photo_whose_channels_are_equal_goes_out_as_gray_at_every_depth(self):
        for depth, pack, values in (("8", "<%dB", range(0, 240, 10)), ("16", "<%dH", range(0, 60000, 2500)),
                                    ("f32", "<%df", [v / 24.0 for v in range(24)])):
            image = FakeImage(6, 4, gray=False, depth=depth)
            gray = list(values)
            rgb = [value for value in gray for _ in range(3)]
            source = image.add_source("scan", struct.pack(pack % len(rgb), *rgb))
            colorize_flow.colorize(self.host, image, source, Settings())
            self.assertEqual(self.requests("POST")[-1][2]["format"], "gray" + depth)
            colour = list(rgb)
            colour[4] += 1 if depth != "f32" else 0.01  # one green value off: a colour photo stays RGB
            source = image.add_source("colour", struct.pack(pack % len(colour), *colour))
            colorize_flow.colorize(self.host, image, source, Settings())
            self.assertEqual(self.requests("POST")[-1][2]["format"], "rgb" + depth)

    def test_a_result_that_cannot_be_fetched_leaves_the_gray_image_gray(self):
        def connect(**options):
            client = client_lib.connect(start=False, **options)
            client.download_layer = lambda job, index: (_ for _ in ()).throw(
                client_lib.DaemonUnreachable("The daemon went away."))
            return client

        with self.assertRaises(client_lib.DaemonUnreachable):
            colorize_flow.colorize(self.host, self.image, self.source, Settings(), connect=connect)
        self.assertTrue(self.image.gray)
        self.assertEqual(self.source.pixels, self.original)
        self.assertEqual([layer.name for layer in self.image.layers], ["photo"])
        self.assertEqual(self.image.open_groups, 0)

    def test_a_result_whose_source_is_gone_is_refused_with_what_to_do(self):
        self.run_flow()
        result = self.image.layers[0]
        self.image.layers.remove(self.source)
        with self.assertRaises(colorize_flow.UserError) as caught:
            self.run_flow(drawable=result)
        self.assertIn("no longer in the image", caught.exception.message)
        self.assertIn("Select the black-and-white layer", caught.exception.message)
        self.assertEqual(len(self.requests("POST")), 1)

    def test_a_mode_without_a_model_says_what_is_installed_and_where_a_model_goes(self):
        write_models_index(self, [{"name": "tiny-full", "task": "full", "default": True, "verified": True}])
        with self.assertRaises(client_lib.ModelNotAvailable) as caught:
            self.run_flow(mode="diverse")
        message = caught.exception.message
        self.assertIn("No model for the mode \"Several variants\" is installed", message)
        self.assertIn("Installed: \"Whole photo\".", message)
        self.assertIn("/home/u/.config/gimp-colorize/models", message)
        self.assertNotIn("install.py", message)
        self.assertTrue(message.endswith("."))

    def test_mode_and_model_choices_come_from_the_index(self):
        write_models_index(self, [{"name": "tiny-full", "task": "full", "default": True, "verified": True},
                                  {"name": "mine", "task": "full", "default": False, "verified": False},
                                  {"name": "det", "task": "detector", "default": True, "verified": True}])
        index = client_lib.load_models_index(client_lib.load_config())
        self.assertEqual(colorize_flow.mode_choices(index), [
            ("full", "Whole photo", True), ("instance", "Object by object (no model installed)", False),
            ("diverse", "Several variants (no model installed)", False)])
        self.assertEqual(colorize_flow.model_choices(index), [
            ("default", "Default for the mode"), ("tiny-full", "tiny-full (Whole photo, default)"),
            ("mine", "mine (Whole photo, unverified)")])
        self.assertTrue(all(installed for _, _, installed in colorize_flow.mode_choices(None)))
        self.assertEqual(colorize_flow.model_choices(None), [("default", "Default for the mode")])
