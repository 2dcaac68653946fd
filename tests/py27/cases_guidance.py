"""Colour hints layers and reference photos through the fake host against the fake daemon. Python 2.7 and 3."""

from __future__ import absolute_import, division, print_function

import json
import unittest

from support import DaemonTestCase

import colorize_flow
import colorize_inputs
import gimp_colorize_client as client_lib
import pixel_bytes
from colorize_flow import Settings
from fake_host import FakeHost, FakeImage

RED = bytearray([200, 30, 40, 255])
GRAY_DOT = bytearray([128, 128, 128, 255])


def gray_ramp(width, height):
    return bytes(bytearray((7 * i) % 256 for i in range(width * height)))


def paint(layer, x, y, w, h, rgba):
    """Fill a rectangle of an RGBA 8-bit layer (its own coordinates), like a brush stroke would."""
    pixels = bytearray(layer.pixels)
    for row in range(y, y + h):
        for column in range(x, x + w):
            start = (row * layer.width + column) * 4
            pixels[start:start + 4] = rgba
    layer.pixels = bytes(pixels)


def rgb_at(layer, x, y):
    size = pixel_bytes.bytes_per_pixel(layer.format)
    start = (y * layer.width + x) * size
    return tuple(bytearray(layer.pixels[start:start + 3]))


class HintsLayerTest(DaemonTestCase):
    def setUp(self):
        DaemonTestCase.setUp(self)
        self.host = FakeHost()
        self.image = FakeImage(8, 6, gray=True)
        self.original = gray_ramp(8, 6)
        self.source = self.image.add_source("photo", self.original)

    def add_hints(self, drawable=None):
        return colorize_inputs.add_hints_layer(self.host, self.image, drawable or self.source)

    def run_flow(self, drawable=None, **settings):
        return colorize_flow.colorize(self.host, self.image, drawable or self.source, Settings(**settings))

    def uploads(self):
        return [query for method, path, query in self.daemon.requests if path == "/v1/inputs"]

    def job_query(self, number=-1):
        return self.requests("POST")[number][2]

    def test_the_hints_layer_is_transparent_above_the_photo_with_its_size_and_the_image_becomes_rgb(self):
        layer = self.add_hints()
        self.assertEqual([item.name for item in self.image.layers], ["Color hints", "photo"])
        self.assertEqual((layer.width, layer.height, layer.offsets, layer.format), (8, 6, (0, 0), "rgba8"))
        self.assertEqual(layer.pixels, bytes(bytearray(8 * 6 * 4)))
        record = json.loads(layer.parasites[colorize_flow.HINTS_PARASITE].decode("utf-8"))
        self.assertEqual((record["source_tattoo"], record["source_name"]), (self.source.tattoo, "photo"))
        self.assertIs(self.image.selected, layer)  # so the brush paints on it at once
        self.assertFalse(self.image.gray)  # colours cannot be painted on a gray image
        self.assertEqual(self.source.pixels[0::3], self.original)
        self.assertEqual(self.image.undo_steps, 1)

    def test_the_hints_layer_takes_the_photos_offsets_and_size(self):
        image = FakeImage(20, 20, gray=False)
        source = image.add_source("moved", gray_ramp(4, 3) * 3, offsets=(5, 6), size=(4, 3))
        layer = colorize_inputs.add_hints_layer(self.host, image, source)
        self.assertEqual((layer.offsets, layer.width, layer.height), ((5, 6), 4, 3))

    def test_a_second_hints_layer_gets_a_name_of_its_own_and_a_hints_layer_is_not_given_one(self):
        first = self.add_hints()
        self.add_hints()
        # each directly above the selected layer
        self.assertEqual([item.name for item in self.image.layers], ["Color hints", "Color hints (2)", "photo"])
        with self.assertRaises(colorize_flow.UserError) as caught:
            self.add_hints(first)
        self.assertIn("already holds color hints", caught.exception.message)

    def test_painted_hints_go_to_the_daemon_and_their_colours_land_where_they_were_painted(self):
        hints = self.add_hints()
        paint(hints, 2, 1, 2, 2, RED)
        painted_bytes = hints.pixels
        self.run_flow()
        (upload,) = self.uploads()
        self.assertEqual((upload["format"], upload["width"], upload["height"]), ("rgba8", "8", "6"))
        self.assertEqual(self.job_query()["hints"], "input1")
        stored = self.daemon.inputs["input1"][3]
        self.assertEqual(stored, painted_bytes)
        result = self.image.layers[1]
        self.assertEqual([item.name for item in self.image.layers], ["Color hints", "Colorized: tiny-full", "photo"])
        self.assertEqual(rgb_at(result, 2, 1), (200, 30, 40))
        self.assertNotEqual(rgb_at(result, 0, 0), (200, 30, 40))
        self.assertEqual(hints.pixels, painted_bytes)  # the hints layer is only read
        record = json.loads(result.parasites[colorize_flow.RESULT_PARASITE].decode("utf-8"))
        self.assertEqual(record["hints"], "Color hints")

    def test_hints_are_read_over_the_photos_rectangle_whatever_the_hints_layer_covers(self):
        image = FakeImage(12, 10, gray=False)
        source = image.add_source("photo", gray_ramp(6, 4) * 3, offsets=(3, 2), size=(6, 4))
        hints = image.add_source("my dots", bytes(bytearray(5 * 5 * 4)), alpha=True, offsets=(6, 4), size=(5, 5))
        image.layers.reverse()  # the dots above the photo
        paint(hints, 0, 0, 1, 1, RED)  # image (6, 4) = photo (3, 2)
        image.selection = (4, 2, 4, 3)  # photo rectangle (1, 0, 4, 3)
        colorize_flow.colorize(self.host, image, source, Settings(hints="layer", hints_layer=hints))
        stored = bytearray(self.daemon.inputs["input1"][3])
        self.assertEqual(len(stored), 4 * 3 * 4)
        painted = [(i // 4 % 4, i // 16) for i in range(3, len(stored), 4) if stored[i]]
        self.assertEqual(painted, [(2, 2)])  # photo (3, 2) inside the rectangle that starts at (1, 0)
        self.assertEqual(self.host.reads[-1], ("my dots", (0, 0, 2, 1)))  # only the part over the rectangle

    def test_colorize_on_the_hints_layer_colorizes_the_photo_under_it_and_keeps_the_hints_on_top(self):
        hints = self.add_hints()
        paint(hints, 0, 0, 1, 1, GRAY_DOT)
        result = self.run_flow(drawable=hints)
        self.assertIs(result.source, self.source)
        self.assertEqual([item.name for item in self.image.layers], ["Color hints", "Colorized: tiny-full", "photo"])
        self.assertEqual(rgb_at(self.image.layers[1], 0, 0), (128, 128, 128))  # a gray dot keeps it neutral

    def test_colorize_on_the_hints_layer_puts_the_result_directly_under_it_over_older_results(self):
        self.run_flow()
        hints = self.add_hints(self.source)
        self.image.layers.remove(hints)
        self.image.layers.insert(0, hints)  # the hints on top, an older result between them and the photo
        paint(hints, 0, 0, 1, 1, RED)
        self.run_flow(drawable=hints)
        self.assertEqual([item.name for item in self.image.layers],
                         ["Color hints", "Colorized: tiny-full (2)", "Colorized: tiny-full", "photo"])
        self.assertEqual(rgb_at(self.image.layers[1], 0, 0), (200, 30, 40))

    def test_a_hints_layer_over_something_that_is_no_photo_says_what_to_do(self):
        hints = self.add_hints()
        self.image.layers.remove(self.source)
        with self.assertRaises(colorize_flow.UserError) as caught:
            self.run_flow(drawable=hints)
        self.assertIn("holds color hints, not a photo", caught.exception.message)
        self.assertEqual(self.daemon.requests, [])

    def test_nothing_painted_sends_no_hints(self):
        self.add_hints()
        self.run_flow()
        self.assertEqual(self.uploads(), [])
        self.assertNotIn("hints", self.job_query())

    def test_hints_none_sends_nothing_even_when_painted(self):
        paint(self.add_hints(), 0, 0, 2, 2, RED)
        self.run_flow(hints="none")
        self.assertEqual(self.uploads(), [])

    def test_auto_prefers_the_hints_layer_made_for_this_photo(self):
        other = self.image.add_source("other photo", gray_ramp(8, 6))
        mine = self.add_hints()
        theirs = self.add_hints(other)
        paint(mine, 0, 0, 1, 1, RED)
        paint(theirs, 0, 0, 1, 1, GRAY_DOT)
        self.run_flow()
        self.assertEqual(self.daemon.inputs["input1"][3], mine.pixels)

    def test_a_chosen_hints_layer_must_be_paint_on_transparency_not_the_photo_or_a_result(self):
        self.run_flow()
        result = self.image.layers[0]
        opaque = self.image.add_source("opaque", gray_ramp(8, 6))
        for layer, words in ((None, "no layer was chosen"), (self.source, "is the photo being colorized"),
                             (result, "is a result of Colorize Photo (AI), not color hints"),
                             (opaque, "has no transparency")):
            with self.assertRaises(colorize_flow.UserError) as caught:
                self.run_flow(hints="layer", hints_layer=layer)
            self.assertIn(words, caught.exception.message)
            self.assertTrue(caught.exception.message.endswith("."))
        self.assertEqual(len(self.requests("POST")), 1)

    def test_the_dialogs_hints_menu_offers_hints_layers_first_and_never_the_photo_or_a_result(self):
        self.run_flow()
        other = self.image.add_source("other photo", gray_ramp(8, 6))
        theirs = self.add_hints(other)
        mine = self.add_hints()
        dots = self.image.add_source("dots", bytes(bytearray(8 * 6 * 4)), alpha=True, gray=False)
        choices = colorize_flow.hints_layer_choices(self.host, self.image, self.source)
        self.assertEqual([label for _, label in choices], ["None", mine.name, theirs.name, "dots"])
        self.assertIs(choices[3][0], dots)

    def test_a_refusal_by_the_daemon_names_the_hints_layer(self):
        paint(self.add_hints(), 0, 0, 1, 1, RED)
        self.daemon.refuse_guidance = "model 'tiny-full' does not take colour hints; choose a guided model"
        with self.assertRaises(client_lib.BadRequest) as caught:
            self.run_flow()
        self.assertIn("does not take colour hints", caught.exception.message)
        self.assertIn("the color hints come from the layer \"Color hints\"", caught.exception.message)
        self.assertEqual([item.name for item in self.image.layers], ["Color hints", "photo"])


class ReferenceTest(DaemonTestCase):
    def setUp(self):
        DaemonTestCase.setUp(self)
        self.image = FakeImage(6, 4, gray=True)
        self.source = self.image.add_source("photo", gray_ramp(6, 4))
        self.reference = FakeImage(3, 2, gray=False, name="beach.jpg")
        self.reference_pixels = bytes(bytearray([200, 120, 40] * 6))
        self.reference.add_source("Background", self.reference_pixels)
        self.host = FakeHost(files={"/photos/beach.jpg": self.reference})

    def run_flow(self, **settings):
        return colorize_flow.colorize(self.host, self.image, self.source, Settings(**settings))

    def test_an_open_images_colours_are_sent_and_the_image_is_left_alone(self):
        self.run_flow(reference="image", reference_image=self.reference, reference_strength=0.5)
        upload = [query for method, path, query in self.daemon.requests if path == "/v1/inputs"][0]
        self.assertEqual((upload["format"], upload["width"], upload["height"]), ("rgb8", "3", "2"))
        self.assertEqual(self.daemon.inputs["input1"][3], self.reference_pixels)
        query = self.requests("POST")[0][2]
        self.assertEqual((query["reference"], query["reference_strength"]), ("input1", "0.5"))
        self.assertEqual(self.reference.layers[0].pixels, self.reference_pixels)
        self.assertFalse(self.reference.deleted)
        record = json.loads(self.image.layers[0].parasites[colorize_flow.RESULT_PARASITE].decode("utf-8"))
        self.assertEqual((record["reference"], record["reference_strength"]), ("image: beach.jpg", 0.5))

    def test_a_file_is_opened_for_its_colours_and_closed_again(self):
        self.run_flow(reference="file", reference_file="/photos/beach.jpg")
        self.assertEqual(self.daemon.inputs["input1"][3], self.reference_pixels)
        self.assertTrue(self.reference.deleted)

    def test_a_missing_file_or_no_choice_is_a_sentence_before_anything_is_sent(self):
        for settings, words in (({"reference": "file", "reference_file": "/photos/gone.png"}, "Cannot open"),
                                ({"reference": "file"}, "no file was chosen"),
                                ({"reference": "image"}, "none was chosen")):
            with self.assertRaises(colorize_flow.UserError) as caught:
                self.run_flow(**settings)
            self.assertIn(words, caught.exception.message)
        self.assertEqual(self.daemon.requests, [])
        self.assertTrue(self.host.progress_ended)

    def test_a_gray_reference_gets_the_daemons_sentence_and_changes_nothing(self):
        gray = FakeImage(3, 2, gray=True, name="gray.png")
        gray.add_source("Background", bytes(bytearray([90] * 6)))
        with self.assertRaises(client_lib.BadRequest) as caught:
            self.run_flow(reference="image", reference_image=gray)
        message = caught.exception.message
        self.assertTrue(message.startswith("The reference photo has no colour (it is gray); choose a colour photo"),
                        message)
        self.assertIn("the reference photo is the open image \"gray.png\"", message)
        self.assertTrue(message.endswith("."))
        self.assertEqual(self.daemon.inputs["input1"][0], "rgb8")  # a gray image goes as RGB: the daemon decides
        self.assertEqual([layer.name for layer in self.image.layers], ["photo"])
        self.assertTrue(self.image.gray)

    def test_the_strength_is_checked(self):
        with self.assertRaises(colorize_flow.UserError) as caught:
            self.run_flow(reference="image", reference_image=self.reference, reference_strength=1.5)
        self.assertIn("Reference strength must be between 0", caught.exception.message)


class PixelHelpersTest(unittest.TestCase):
    def test_conversions_to_rgba8_and_rgb8(self):
        self.assertEqual(bytearray(pixel_bytes.to_rgba8(b"\x10\x80", "graya8")), bytearray([16, 16, 16, 128]))
        self.assertEqual(bytearray(pixel_bytes.to_rgba8(b"\x01\x02\x03", "rgb8")), bytearray([1, 2, 3, 255]))
        self.assertEqual(bytearray(pixel_bytes.to_rgb8(b"\x07\x00", "graya8")), bytearray([7, 7, 7]))
        import struct
        self.assertEqual(bytearray(pixel_bytes.to_8bit(struct.pack("<3H", 0, 32896, 65535), "rgb16")[0]),
                         bytearray([0, 128, 255]))
        self.assertEqual(bytearray(pixel_bytes.to_8bit(struct.pack("<2f", 0.5, 2.0), "graya" + "f32")[0]),
                         bytearray([128, 255]))

    def test_place_in_rect_and_intersect(self):
        self.assertEqual(pixel_bytes.intersect((0, 0, 4, 4), (2, 3, 5, 5)), (2, 3, 2, 1))
        self.assertIsNone(pixel_bytes.intersect((0, 0, 2, 2), (2, 0, 2, 2)))
        placed = pixel_bytes.place_in_rect(b"\x01\x02", (1, 1, 2, 1), (0, 0, 3, 2), 1)
        self.assertEqual(bytearray(placed), bytearray([0, 0, 0, 0, 1, 2]))
        self.assertTrue(pixel_bytes.alpha_is_empty(b"\x09\x09\x09\x00" * 3))
        self.assertFalse(pixel_bytes.alpha_is_empty(b"\x00\x00\x00\x00\x00\x00\x00\x01"))
        self.assertEqual(bytearray(pixel_bytes.darker_of(b"\x10\xff\x80", b"\xff\x00\x40")), bytearray([16, 0, 64]))
