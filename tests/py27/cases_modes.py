"""Diverse mode (layer groups, seeds) and instance mode (objects from the selection, instance layers) through
the fake host against the fake daemon. Python 2.7 and 3."""

from __future__ import absolute_import, division, print_function

import json

from support import DaemonTestCase

import colorize_flow
from colorize_flow import Settings
from fake_host import FakeHost, FakeImage


def gray_ramp(width, height):
    return bytes(bytearray((7 * i) % 256 for i in range(width * height)))


def record_of(layer):
    return json.loads(layer.parasites[colorize_flow.RESULT_PARASITE].decode("utf-8"))


class DiverseTest(DaemonTestCase):
    def setUp(self):
        DaemonTestCase.setUp(self)
        self.daemon.models["diverse"] = "tiny-diverse"
        self.host = FakeHost()
        self.image = FakeImage(6, 4, gray=True)
        self.source = self.image.add_source("photo", gray_ramp(6, 4))

    def run_flow(self, drawable=None, **settings):
        settings.setdefault("mode", "diverse")
        return colorize_flow.colorize(self.host, self.image, drawable or self.source, Settings(**settings))

    def test_samples_go_into_one_group_above_the_photo_and_only_the_first_shows(self):
        result = self.run_flow(samples=4)
        group = self.image.layers[0]
        self.assertEqual([layer.name for layer in self.image.layers], ["Colorize: diverse (tiny-diverse)", "photo"])
        self.assertEqual(result.layers[0], group)
        seed = int(self.requests("POST")[0][2]["seed"])
        self.assertTrue(0 <= seed < colorize_flow.NEW_SEEDS)  # short in a name, and each sample's seed fits GIMP
        self.assertIs(self.image.selected, group.children[0])  # the sample shown, not the last one made
        self.assertEqual([layer.name for layer in group.children],
                         ["sample %d (seed %d)" % (number + 1, seed + number) for number in range(4)])
        self.assertEqual([layer.visible for layer in group.children], [True, False, False, False])
        self.assertEqual([record_of(layer)["seed"] for layer in group.children], [seed + n for n in range(4)])
        self.assertEqual(len(set(layer.pixels for layer in group.children)), 4)
        self.assertEqual(self.image.undo_steps, 1)

    def test_samples_one_with_a_samples_seed_gives_exactly_that_layer(self):
        self.run_flow(samples=3, seed=1000)
        third = self.image.layers[0].children[2]
        self.run_flow(samples=1, seed=1002)
        again = self.image.layers[1]  # directly above the photo, which is still the selected layer
        self.assertEqual(again.name, "Colorize: diverse (tiny-diverse) (2)")
        self.assertEqual([layer.name for layer in again.children], ["sample 1 (seed 1002)"])
        self.assertEqual(again.children[0].pixels, third.pixels)

    def test_the_same_seed_gives_the_same_layers_with_names_of_their_own(self):
        self.run_flow(samples=2, seed=5)
        self.run_flow(samples=2, seed=5)
        first, second = self.image.layers[0], self.image.layers[1]
        self.assertEqual([layer.name for layer in second.children], ["sample 1 (seed 5) (2)", "sample 2 (seed 6) (2)"])
        self.assertEqual([layer.pixels for layer in first.children], [layer.pixels for layer in second.children])

    def test_repeat_on_a_sample_or_its_group_puts_a_new_group_above_the_old_one(self):
        self.run_flow(samples=2, seed=5)
        first = self.image.layers[0]
        self.run_flow(drawable=first.children[1], samples=2, seed=9)  # Filters > Repeat with a sample selected
        self.run_flow(drawable=self.image.layers[0], samples=2, seed=11)  # ... or with the new group selected
        self.assertEqual([layer.name for layer in self.image.layers],
                         ["Colorize: diverse (tiny-diverse) (3)", "Colorize: diverse (tiny-diverse) (2)",
                          "Colorize: diverse (tiny-diverse)", "photo"])
        self.assertEqual([len(group.children) for group in self.image.layers[:3]], [2, 2, 2])
        self.assertEqual([query["format"] for _, _, query in self.requests("POST")], ["gray8"] * 3)

    def test_a_selection_masks_every_sample(self):
        self.image.selection = (1, 1, 3, 2)
        self.run_flow(samples=2)
        group = self.image.layers[0]
        self.assertEqual([(layer.mask, layer.offsets, layer.width) for layer in group.children],
                         [((1, 1, 3, 2), (1, 1), 3)] * 2)
        self.assertIsNone(group.mask)

    def test_up_to_sixteen_samples(self):
        self.run_flow(samples=16)
        self.assertEqual(len(self.image.layers[0].children), 16)
        with self.assertRaises(colorize_flow.UserError):
            self.run_flow(samples=17)


class InstanceTest(DaemonTestCase):
    def setUp(self):
        DaemonTestCase.setUp(self)
        self.daemon.models["instance"] = "tiny-instance"
        self.host = FakeHost()
        self.image = FakeImage(10, 8, gray=True)
        self.source = self.image.add_source("photo", gray_ramp(10, 8))
        self.image.selection = [(1, 1, 3, 2), (6, 4, 3, 3)]  # two separate rectangles

    def run_flow(self, **settings):
        settings.setdefault("mode", "instance")
        return colorize_flow.colorize(self.host, self.image, self.source, Settings(**settings))

    def uploaded(self, name):
        return self.daemon.inputs[self.requests("POST")[-1][2][name]]

    def test_a_selection_of_two_areas_marks_two_objects_and_the_whole_layer_is_colorized(self):
        result = self.run_flow(boxes="selection")
        query = self.requests("POST")[0][2]
        self.assertEqual((query["boxes"], query["width"], query["height"]), ("selection", "10", "8"))
        fmt, width, height, mask = self.uploaded("selection")
        self.assertEqual((fmt, width, height), ("gray8", 10, 8))
        mask = bytearray(mask)
        self.assertEqual(sum(1 for value in mask if value == 255), 3 * 2 + 3 * 3)
        self.assertEqual((mask[1 * 10 + 1], mask[4 * 10 + 6], mask[0], mask[5 * 10 + 5]), (255, 255, 0, 0))
        layer = self.image.layers[0]
        self.assertEqual(layer.name, "Colorized: tiny-instance, 2 objects")
        self.assertEqual((layer.offsets, layer.width, layer.height, layer.mask), ((0, 0), 10, 8, None))
        self.assertEqual(record_of(layer)["instances"], [[6, 4, 3, 3], [1, 1, 3, 2]])
        self.assertEqual(len(result.details["instances"]), 2)

    def test_instance_layers_go_into_a_group_each_with_its_mask(self):
        self.run_flow(boxes="selection", instance_layers=True)
        self.assertEqual(self.requests("POST")[0][2]["instance_layers"], "true")
        names = [layer.name for layer in self.image.layers]
        self.assertEqual(names, ["Colorized: tiny-instance, 2 objects", "Instances", "photo"])
        group = self.image.layers[1]
        self.assertEqual([layer.name for layer in group.children], ["Instance 1: selection", "Instance 2: selection"])
        first = bytearray(group.children[0].mask)
        self.assertEqual((len(first), first[4 * 10 + 6], first[1 * 10 + 1]), (80, 255, 0))  # the larger one first
        self.assertEqual([record_of(layer)["group"] for layer in group.children], ["Instances"] * 2)
        self.assertEqual(self.image.undo_steps, 1)

    def test_objects_from_the_selection_need_a_selection(self):
        self.image.selection = None
        for boxes in ("selection", "both"):
            with self.assertRaises(colorize_flow.UserError) as caught:
                self.run_flow(boxes=boxes)
            self.assertIn("needs a selection", caught.exception.message)
        self.assertEqual(self.daemon.requests, [])

    def test_automatic_objects_with_a_selection_colorize_only_the_selection(self):
        self.image.selection = (2, 2, 6, 4)
        self.run_flow(boxes="auto", instance_layers=True)
        query = self.requests("POST")[0][2]
        self.assertNotIn("selection", query)
        self.assertEqual((query["width"], query["height"]), ("6", "4"))
        top, group = self.image.layers[0], self.image.layers[1]
        self.assertEqual((top.name, top.mask), ("Colorized: tiny-instance, 1 object", (2, 2, 6, 4)))
        self.assertEqual(group.mask, (2, 2, 6, 4))  # the selection limits the group; each layer keeps its own mask
        self.assertEqual(len(group.children[0].mask), 6 * 4)

    def test_progress_names_the_stages_and_the_number_of_objects(self):
        self.daemon.polls_to_finish = 4
        self.run_flow(boxes="both")
        texts = self.host.progress_texts
        for expected in ("finding the objects", "coloring 3 objects", "blending the objects into the photo",
                         "sending the selection that marks the objects"):
            self.assertIn("Colorize Photo: " + expected, texts)
