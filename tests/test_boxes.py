import numpy as np
import pytest

from gimp_colorize import boxes
from gimp_colorize.boxes import Instance


def rectangles_mask(height, width, rects, dtype=np.uint8, value=255):
    mask = np.zeros((height, width), dtype=dtype)
    for x, y, w, h in rects:
        mask[y:y + h, x:x + w] = value
    return mask


def test_two_separate_rectangles_are_two_instances_with_exact_boxes():
    mask = rectangles_mask(120, 200, [(10, 20, 30, 40), (100, 50, 60, 25)])
    found = boxes.selection_instances(mask)
    assert [i.box for i in found] == [(100, 50, 60, 25), (10, 20, 30, 40)]  # larger (1500 px) first
    assert {i.source for i in found} == {"selection"}


def test_regions_touching_at_a_corner_are_one_region():
    mask = rectangles_mask(50, 50, [(5, 5, 10, 10), (15, 15, 10, 10)])
    assert [i.box for i in boxes.selection_instances(mask)] == [(5, 5, 20, 20)]


def test_half_selected_pixels_count_and_specks_do_not():
    mask = rectangles_mask(60, 60, [(0, 0, 20, 20)], value=128)
    mask[40:42, 40:42] = 255  # a 4-pixel speck
    mask[30:35, 50:55] = 127  # below half: not selected
    assert [i.box for i in boxes.selection_instances(mask)] == [(0, 0, 20, 20)]
    float_mask = rectangles_mask(60, 60, [(3, 4, 20, 10)], dtype=np.float32, value=0.5)
    assert [i.box for i in boxes.selection_instances(float_mask)] == [(3, 4, 20, 10)]
    assert boxes.selection_instances(np.zeros((30, 30), np.uint8)) == []


def test_connected_regions_agree_with_skimage_on_random_masks():
    from skimage.measure import label, regionprops

    rng = np.random.default_rng(3)
    for trial in range(6):
        mask = rng.random((70, 90)) < (0.3 + 0.1 * trial)
        ours = sorted(boxes.connected_regions(mask))
        theirs = sorted((tuple(int(v) for v in p.bbox), int(p.area)) for p in regionprops(label(mask, connectivity=2)))
        assert ours == theirs


def test_a_large_selection_is_labelled_on_a_coarse_grid_but_boxes_stay_tight():
    mask = rectangles_mask(3000, 4000, [(1001, 7, 13, 2900), (3000, 2003, 555, 401)], dtype=bool, value=True)
    found = boxes.selection_instances(mask)
    assert [i.box for i in found] == [(3000, 2003, 555, 401), (1001, 7, 13, 2900)]


def test_detections_are_thresholded_deduplicated_across_classes_and_mapped_to_pixels():
    detections = np.array([[0.1, 0.1, 0.5, 0.5],     # person 0.9
                           [0.11, 0.1, 0.5, 0.52],   # the same thing as "dog", 0.6: a duplicate
                           [0.6, 0.6, 0.9, 1.2],     # car 0.55, clipped to the image
                           [0.0, 0.0, 0.005, 0.5],   # 0.8 but too thin
                           [0.2, 0.6, 0.4, 0.8]])    # 0.3: below the threshold
    scores = np.array([0.9, 0.6, 0.55, 0.8, 0.3])
    labels = ["person", "dog", "car", "kite", "cat"]
    found = boxes.detected_instances(detections, scores, labels, height=100, width=200, threshold=0.5)
    assert [(i.label, i.box) for i in found] == [("person", (20, 10, 80, 40)), ("car", (120, 60, 60, 40))]
    assert found[0].to_json() == {"box": [20, 10, 80, 40], "source": "detector", "label": "person", "score": 0.9}


def test_choose_puts_the_users_regions_first_and_drops_detections_repeating_them():
    user = [Instance((0, 0, 10, 10), "user"), Instance((50, 50, 20, 20), "selection")]
    detected = [Instance((1, 0, 10, 10), "detector", "cat", 0.9), Instance((30, 0, 10, 10), "detector", "dog", 0.8),
                Instance((80, 80, 5, 5), "detector", "cup", 0.7)]
    chosen = boxes.choose(user, detected, limit=3)
    assert [i.box for i in chosen] == [(0, 0, 10, 10), (50, 50, 20, 20), (30, 0, 10, 10)]


def test_feathered_mask_is_opaque_inside_and_fades_to_the_box_border():
    mask = boxes.feathered_mask((10, 20, 50, 40), height=80, width=100)
    assert mask.dtype == np.uint8 and mask.shape == (80, 100)
    assert mask[40, 35] == 255 and mask[:20].max() == 0 and mask[:, 60:].max() == 0
    row = mask[40, 10:60].astype(int)
    assert 0 < row[0] < row[1] < row[2] < 255 and row[25] == 255  # a ramp of about 8% of 40 px
    assert np.array_equal(row, row[::-1])


@pytest.mark.parametrize("box, expected", [((0.25, 0.5, 0.75, 1.0), (25, 50, 50, 50)),
                                           ((-0.2, 0.0, 0.101, 0.3), (0, 0, 11, 30)),
                                           ((0.5, 0.5, 0.5, 0.9), None)])
def test_pixel_box(box, expected):
    assert boxes.pixel_box(*box, height=100, width=100) == expected
