"""Instance mode in a real GIMP 3 with objects marked by the selection, against the fake daemon.

The daemon's instance engine is built elsewhere; the fake (tests/fakes/fake_daemon.py, run as a process on
the sandbox's port) answers like it: one object per separate region of the uploaded selection, its boxes in
the job's details, and with instance layers one layer per object in the group "Instances", each with a mask.
It writes every request and every uploaded input to a log, so the test sees what the plug-in sent.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from skimage import measure

from tests.gimp3 import harness, pixels

pytestmark = pytest.mark.gimp

FAKE_DAEMON = harness.REPO / "tests" / "fakes" / "fake_daemon.py"
BOXES = [[40, 60, 120, 90], [300, 280, 150, 110]]  # two separate rectangles in the 512 x 512 photo
OBJECTS = {"mode": "instance", "boxes": "selection"}


def case_list(photo):
    return [
        {"id": "objects", "input": photo, "select": BOXES, "runs": [{"arguments": OBJECTS}]},
        {"id": "instance-layers", "input": photo, "select": BOXES,
         "runs": [{"arguments": dict(OBJECTS, **{"instance-layers": True})}]},
        {"id": "no-selection", "input": photo, "runs": [{"arguments": OBJECTS}]},
    ]


@pytest.fixture(scope="module")
def cases(sandbox):
    out_dir = sandbox.work / "instance"
    out_dir.mkdir(exist_ok=True)
    photo = str(pixels.write_test_photos(out_dir)["gray8"])
    log = out_dir / "fake-daemon.log"
    fake = subprocess.Popen([sys.executable, str(FAKE_DAEMON), str(sandbox.port), str(sandbox.config_dir / "token"),
                             "instance=tiny-instance", "--log", str(log)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    try:
        harness.wait_for_health("http://127.0.0.1:%d" % sandbox.port, 30, fake)
        run = sandbox.run_batch("modes_cases.py", {"out_dir": str(out_dir), "cases": case_list(photo)})
    finally:
        fake.terminate()
        fake.wait(timeout=15)
    assert run.returncode == 0, run.report()
    found = {case["case"]: case for case in run.facts}
    for case in found.values():
        assert "exception" not in case, case["exception"]
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    jobs = [entry["query"] for entry in entries if entry.get("method") == "POST" and entry["path"] == "/v1/jobs"]
    inputs = {entry["input"]: entry for entry in entries if "input" in entry}
    return found, jobs, inputs


def selection_sent(job, inputs):
    upload = inputs[job["selection"]]
    assert (upload["format"], upload["width"], upload["height"]) == ("gray8", 512, 512)
    return np.fromfile(upload["file"], np.uint8).reshape(512, 512)


def test_two_selected_areas_go_to_the_daemon_as_a_mask_of_two_regions_over_the_whole_layer(cases):
    found, jobs, inputs = cases
    assert found["objects"]["runs"][0]["status"] == "success", found["objects"]["runs"][0]["message"]
    job = jobs[0]
    assert (job["mode"], job["boxes"], job["width"], job["height"]) == ("instance", "selection", "512", "512")
    regions = measure.regionprops(measure.label(selection_sent(job, inputs) >= 128, connectivity=2))
    boxes = sorted([region.bbox[1], region.bbox[0], region.bbox[3] - region.bbox[1], region.bbox[2] - region.bbox[0]]
                   for region in regions)
    assert boxes == sorted(BOXES)


def test_the_whole_layer_is_colorized_and_names_the_objects_found(cases):
    found, _, _ = cases
    case = found["objects"]
    top = case["layers"][0]
    assert top["name"] == "Colorized: tiny-instance, 2 objects"
    assert "mask" not in top and top["offsets"] == [0, 0]
    assert (top["pixels"]["width"], top["pixels"]["height"]) == (512, 512)
    assert sorted(top["record"]["data"]["instances"]) == sorted(BOXES)
    assert case["layers"][1]["id"] == case["source_id"]


def test_instance_layers_go_into_a_group_one_per_object_each_with_its_mask(cases):
    found, jobs, _ = cases
    case = found["instance-layers"]
    assert case["runs"][0]["status"] == "success", case["runs"][0]["message"]
    assert jobs[1]["instance_layers"] == "true"
    assert [item["name"] for item in case["layers"]][:2] == ["Colorized: tiny-instance, 2 objects", "Instances"]
    assert case["layers"][2]["id"] == case["source_id"]
    group = case["layers"][1]
    assert group["group"] and [child["name"] for child in group["children"]] == ["Instance 1: selection",
                                                                                "Instance 2: selection"]
    boxes = []
    for child in group["children"]:
        mask = np.fromfile(child["mask"]["file"], np.uint8).reshape(child["mask"]["height"], child["mask"]["width"])
        rows, columns = np.nonzero(mask == 255)
        boxes.append([columns.min(), rows.min(), columns.max() - columns.min() + 1, rows.max() - rows.min() + 1])
        assert child["record"]["data"]["group"] == "Instances"
    assert [list(map(int, box)) for box in boxes] == [BOXES[1], BOXES[0]]  # the larger object first


def test_objects_from_the_selection_without_a_selection_say_what_to_do(cases):
    found, jobs, _ = cases
    case = found["no-selection"]
    (run,) = case["runs"]
    assert run["status"] == "execution-error" and "needs a selection" in run["message"], run
    assert [item["id"] for item in case["layers"]] == [case["source_id"]]
    assert len(jobs) == 2  # nothing was sent for it
