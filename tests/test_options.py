import math

import numpy as np
import pytest

from gimp_colorize import options as opts
from gimp_colorize.errors import BadRequest


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", math.nan, "abc", None, True, "1e-39", 0, 1e9])
def test_temperature_outside_its_bounds_is_refused_with_the_bounds_named(value):
    with pytest.raises(BadRequest) as caught:
        opts.check_number("temperature", value, opts.TEMPERATURE)
    assert "temperature must be a number from 0.01 to 5" in caught.value.message
    assert caught.value.message.endswith(".")


def test_nan_is_refused_as_not_finite_not_as_out_of_range():
    with pytest.raises(BadRequest, match="not a finite number"):
        opts.check_number("vibrancy", "nan", opts.VIBRANCY)


@pytest.mark.parametrize("text,expected", [("0.01", 0.01), ("5", 5.0), (" 0.38 ", 0.38), (1, 1.0)])
def test_numbers_inside_bounds_are_accepted_from_text_or_numbers(text, expected):
    assert opts.check_number("temperature", text, opts.TEMPERATURE) == expected


def test_whole_numbers_must_be_whole():
    assert opts.check_number("samples", "4", opts.SAMPLES, integer=True) == 4
    with pytest.raises(BadRequest, match="whole number from 1 to 16"):
        opts.check_number("samples", "2.5", opts.SAMPLES, integer=True)
    with pytest.raises(BadRequest):
        opts.check_number("samples", 17, opts.SAMPLES, integer=True)


def test_options_validate_names_the_first_bad_value():
    with pytest.raises(BadRequest, match="vibrancy"):
        opts.ColorizeOptions(vibrancy=2.5).validate()
    with pytest.raises(BadRequest, match="reference strength"):
        opts.ColorizeOptions(guidance=opts.Guidance(reference_strength=-0.1)).validate()
    with pytest.raises(BadRequest, match="boxes must be one of auto, selection, both"):
        opts.ColorizeOptions(instance=opts.InstanceOptions(boxes="magic")).validate()
    opts.ColorizeOptions(temperature=0.38, vibrancy=0.0, samples=16, seed=0).validate()


def test_options_with_arrays_compare_by_value():
    hints = np.zeros((4, 4, 4), np.uint8)
    first = opts.ColorizeOptions(guidance=opts.Guidance(hint_image=hints))
    assert first == opts.ColorizeOptions(guidance=opts.Guidance(hint_image=hints.copy()))
    hints2 = hints.copy()
    hints2[0, 0, 3] = 255
    assert first != opts.ColorizeOptions(guidance=opts.Guidance(hint_image=hints2))
    assert opts.ColorizeOptions() == opts.ColorizeOptions()


def test_points_parse_from_json_data_with_clear_errors():
    points = opts.parse_points([{"x": 3, "y": 4.5, "r": 200, "g": 10, "b": 0}, {"x": 0, "y": 0, "r": 0, "g": 0, "b": 0, "size": 9}])
    assert points == (opts.HintPoint(3.0, 4.5, (200, 10, 0), opts.DEFAULT_HINT_SIZE), opts.HintPoint(0.0, 0.0, (0, 0, 0), 9))
    with pytest.raises(BadRequest, match="JSON list"):
        opts.parse_points({"x": 1})
    with pytest.raises(BadRequest, match="point 1 must be an object with x, y, r, g, b"):
        opts.parse_points([{"x": 1, "y": 2}])
    with pytest.raises(BadRequest, match="unknown field"):
        opts.parse_points([{"x": 1, "y": 2, "r": 0, "g": 0, "b": 0, "colour": "red"}])
    with pytest.raises(BadRequest, match="point 1: g must be a whole number from 0 to 255"):
        opts.parse_points([{"x": 1, "y": 2, "r": 0, "g": 300, "b": 0}])


def test_boxes_parse_from_text():
    assert opts.parse_boxes("1,2,30,40; 5,6,7,8") == ((1, 2, 30, 40), (5, 6, 7, 8))
    with pytest.raises(BadRequest, match="box 1 must be x,y,width,height"):
        opts.parse_boxes("1,2,3")
    with pytest.raises(BadRequest, match="at least 1"):
        opts.parse_boxes("1,2,0,5")


def test_guidance_must_fit_the_image():
    too_small = opts.ColorizeOptions(guidance=opts.Guidance(hint_image=np.zeros((3, 4, 4), np.uint8)))
    with pytest.raises(BadRequest, match="the hint image is 4 x 3 pixels; it must have the image's size, 5 x 3"):
        opts.check_fits_image(too_small, 3, 5)
    no_alpha = opts.ColorizeOptions(guidance=opts.Guidance(hint_image=np.zeros((3, 5, 3), np.uint8)))
    with pytest.raises(BadRequest, match="RGBA"):
        opts.check_fits_image(no_alpha, 3, 5)
    outside = opts.ColorizeOptions(guidance=opts.Guidance(points=(opts.HintPoint(5, 1, (1, 2, 3)),)))
    with pytest.raises(BadRequest, match=r"point 1 \(5, 1\) lies outside the 5 x 3 image"):
        opts.check_fits_image(outside, 3, 5)
    box = opts.ColorizeOptions(instance=opts.InstanceOptions(user_boxes=((0, 0, 6, 1),)))
    with pytest.raises(BadRequest, match="box 1"):
        opts.check_fits_image(box, 3, 5)
    opts.check_fits_image(opts.ColorizeOptions(guidance=opts.Guidance(points=(opts.HintPoint(4.9, 2.9, (1, 2, 3)),))), 3, 5)
