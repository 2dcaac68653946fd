"""Guidance over HTTP: uploaded inputs (POST /v1/inputs) named by jobs: hints, points, reference, image reuse."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gimp_colorize import colour
from tests.support import onnx_builders as ob
from tests.support.daemon_harness import MODEL_NAME, start_daemon, wait_job

RED = (200, 30, 40)
RAW = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    daemon = start_daemon(tmp_path_factory.mktemp("daemon"))
    models = Path(daemon.env["GIMP_COLORIZE_MODELS_DIR"])
    ob.build_tiny_model(models / "tiny-guided.onnx", name="tiny-guided", output_kind="ab", hints=True, reference=True)
    with daemon.client() as client:
        assert "tiny-guided" in [m["name"] for m in client.get("/v1/models").json()["models"]]  # rescans the folder
    yield daemon
    daemon.stop()


@pytest.fixture
def client(daemon):
    with daemon.client() as client:
        yield client


def raw_params(pixels, fmt):
    return {"width": pixels.shape[1], "height": pixels.shape[0], "format": fmt}


def upload_raw(client, pixels, fmt):
    response = client.post("/v1/inputs", params=raw_params(pixels, fmt), content=pixels.tobytes(), headers=RAW)
    assert response.status_code == 201, response.text
    return response.json()


def submit(client, image, **params):
    return client.post("/v1/jobs", params={**raw_params(image, "gray8"), **params}, content=image.tobytes(), headers=RAW)


def result(client, response):
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["id"])
    assert job["state"] == "done", job
    pixels = client.get(f"/v1/jobs/{job['id']}/layers/0").content
    return job, np.frombuffer(pixels, np.uint8).reshape(job["layers"][0]["height"], job["layers"][0]["width"], 3)


def red_hints(height=48, width=64):
    hints = np.zeros((height, width, 4), np.uint8)
    hints[16:32, 16:32] = (*RED, 255)
    return hints


def a_of(pixels):
    return colour.rgb_to_lab(pixels)[..., 1].mean()


GRAY = np.full((48, 64), 130, np.uint8)
RED_A = colour.rgb_to_lab(np.array([RED], np.float32) / 255)[0, 1]


def test_an_uploaded_hint_image_colours_its_place(client):
    hints = upload_raw(client, red_hints(), "rgba8")
    assert (hints["kind"], hints["width"], hints["height"]) == ("image", 64, 48)
    plain_job, plain = result(client, submit(client, GRAY, model="tiny-guided"))
    job, hinted = result(client, submit(client, GRAY, hints=hints["id"]))
    assert job["model"] == "tiny-guided"  # the guided default, chosen because the job carries hints
    assert abs(a_of(hinted[20:28, 20:28]) - RED_A) < 8 and abs(a_of(plain[20:28, 20:28]) - RED_A) > 20
    np.testing.assert_array_equal(hinted[:8], plain[:8])


def test_points_inline_or_uploaded_as_json(client):
    points = [{"x": 24, "y": 24, "r": RED[0], "g": RED[1], "b": RED[2], "size": 16}]
    _, inline = result(client, submit(client, GRAY, points=json.dumps(points)))
    uploaded = client.post("/v1/inputs", content=json.dumps(points), headers={"Content-Type": "application/json"})
    assert uploaded.status_code == 201 and uploaded.json()["points"] == 1
    _, by_id = result(client, submit(client, GRAY, points=uploaded.json()["id"]))
    np.testing.assert_array_equal(inline, by_id)
    assert abs(a_of(inline[20:28, 20:28]) - RED_A) < 8


def test_a_reference_photo_upload_changes_the_colours(client):
    buffer = io.BytesIO()
    Image.fromarray(np.full((20, 30, 3), (150, 100, 90), np.uint8)).save(buffer, format="PNG")
    reference = client.post("/v1/inputs", content=buffer.getvalue(), headers={"Content-Type": "image/png"}).json()
    _, plain = result(client, submit(client, GRAY, model="tiny-guided"))
    _, referenced = result(client, submit(client, GRAY, reference=reference["id"]))
    _, half = result(client, submit(client, GRAY, reference=reference["id"], reference_strength="0.5"))
    shift, half_shift = a_of(referenced) - a_of(plain), a_of(half) - a_of(plain)
    assert shift > 5 and abs(half_shift - shift / 2) < 1.5


def test_a_job_can_reuse_an_uploaded_image(client):
    image = upload_raw(client, GRAY, "gray8")
    hints = upload_raw(client, red_hints(), "rgba8")
    response = client.post("/v1/jobs", params={"image": image["id"], "hints": hints["id"]})
    _, reused = result(client, response)
    _, sent = result(client, submit(client, GRAY, hints=hints["id"]))
    np.testing.assert_array_equal(reused, sent)


@pytest.mark.parametrize("case,status,code,words", [
    ("hints of another size", 400, "bad_request", "must have the image's size"),
    ("unknown input", 404, "input_not_found", "upload it again"),
    ("points outside", 400, "bad_request", "lies outside"),
    ("bad points json", 400, "bad_request", "not valid JSON"),
    ("hints for a plain model", 400, "bad_request", "does not take colour hints"),
    ("an opaque hint image", 400, "bad_request", "must be an RGBA image"),
    ("body and image id", 400, "bad_request", "not both"),
    ("bad strength", 400, "bad_request", "reference_strength must be a number from 0 to 1"),
])
def test_bad_guidance_is_a_clear_4xx_and_queues_nothing(client, case, status, code, words):
    small = upload_raw(client, red_hints(10, 10), "rgba8")["id"]
    opaque = upload_raw(client, np.zeros((48, 64, 3), np.uint8), "rgb8")["id"]
    image = upload_raw(client, GRAY, "gray8")["id"]
    requests = {
        "hints of another size": lambda: submit(client, GRAY, hints=small),
        "unknown input": lambda: submit(client, GRAY, hints="nosuchinput"),
        "points outside": lambda: submit(client, GRAY, points='[{"x": 64, "y": 1, "r": 1, "g": 2, "b": 3}]'),
        "bad points json": lambda: submit(client, GRAY, points="[{"),
        "hints for a plain model": lambda: submit(client, GRAY, model=MODEL_NAME, points='[{"x": 1, "y": 1, "r": 1, "g": 2, "b": 3}]'),
        "an opaque hint image": lambda: submit(client, GRAY, hints=opaque),
        "body and image id": lambda: client.post("/v1/jobs", params={**raw_params(GRAY, "gray8"), "image": image},
                                                 content=GRAY.tobytes(), headers=RAW),
        "bad strength": lambda: submit(client, GRAY, reference=opaque, reference_strength="2"),
    }
    response = requests[case]()
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and words in error["message"], error


def test_a_layer_without_a_mask_says_so(client):
    job, _ = result(client, submit(client, GRAY))
    assert job["layers"][0]["mask"] is False and job["layers"][0]["group"] is None
    response = client.get(f"/v1/jobs/{job['id']}/layers/0/mask")
    assert response.status_code == 404 and "has no mask" in response.json()["error"]["message"]
