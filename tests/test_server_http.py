"""HTTP API against a real daemon process (python -m gimp_colorize serve) running a tiny ONNX model."""

import io
import os
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

from gimp_colorize import colour
from tests.support.daemon_harness import MODEL_NAME, start_daemon, wait_job

MAX_PIXELS = 1_000_000
MAX_BODY = 8_000_000
RAW = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    daemon = start_daemon(
        tmp_path_factory.mktemp("daemon"), config={"max_pixels": MAX_PIXELS, "max_body_bytes": MAX_BODY}
    )
    yield daemon
    assert daemon.stop() == 0
    assert not (daemon.log_file.parent / "daemon.pid").exists()  # removed on a clean shutdown


@pytest.fixture
def client(daemon):
    with daemon.client() as client:
        yield client


def gradient(height=48, width=64, dtype=np.uint8) -> np.ndarray:
    top = np.iinfo(dtype).max if dtype != np.float32 else 1.0
    ramp = np.linspace(0, top, width, dtype=np.float64)[None, :] * np.linspace(0.2, 1.0, height)[:, None]
    return ramp.astype(dtype)


def submit_raw(client, pixels, fmt, **params):
    height, width = pixels.shape[:2]
    return client.post(
        "/v1/jobs",
        params={"width": width, "height": height, "format": fmt, **params},
        content=pixels.astype(pixels.dtype.newbyteorder("<")).tobytes(),
        headers=RAW,
    )


def assert_envelope(response, status, code):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and len(error["message"]) > 10


def assert_still_serving(daemon):
    with daemon.client() as client:
        assert client.get("/v1/health").json()["status"] == "ok"
        job = wait_job(client, submit_raw(client, gradient(8, 8), "gray8").json()["id"])
        assert job["state"] == "done"


def test_health(daemon):
    with daemon.client(token=None) as client:
        body = client.get("/v1/health").json()
    assert body["status"] == "ok" and body["models_available"] == 1
    assert "CPUExecutionProvider" in body["providers"]


def test_models(client):
    body = client.get("/v1/models").json()
    assert [(m["name"], m["task"], m["default"]) for m in body["models"]] == [(MODEL_NAME, "full", True)]
    assert body["rejected"] == []


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_auth(daemon, token):
    with daemon.client(token=token) as client:
        assert_envelope(client.get("/v1/models"), 401, "unauthorized")
        assert_envelope(submit_raw(client, gradient(4, 4), "gray8"), 401, "unauthorized")
    assert_still_serving(daemon)


def test_raw_round_trip_keeps_lightness_and_adds_colour(client):
    gray = gradient()
    job = wait_job(client, submit_raw(client, gray, "gray8").json()["id"])
    assert job["state"] == "done" and job["progress"] == 1.0
    assert job["layers"] == [
        {"index": 0, "name": job["layers"][0]["name"], "width": 64, "height": 48, "format": "rgb8", "group": None,
         "visible": True, "mask": False, "details": {}}
    ]
    response = client.get(f"/v1/jobs/{job['id']}/layers/0")
    assert (response.headers["x-width"], response.headers["x-height"], response.headers["x-format"]) == (
        "64",
        "48",
        "rgb8",
    )
    rgb = np.frombuffer(response.content, np.uint8).reshape(48, 64, 3)
    assert np.ptp(rgb.astype(int), axis=-1).max() > 10  # it is not gray any more
    # lightness within one level of the input, except the pixels the engine reports as moved by gamut clipping
    output_gray = colour.lightness_to_gray(colour.rgb_to_lightness(rgb)) * 255
    moved = np.count_nonzero(np.abs(output_gray - gray) > 1.0)
    assert moved <= job["clipped_pixels"] < gray.size // 2


def test_raw_16_bit_round_trip(client):
    gray = gradient(dtype=np.uint16)
    job = wait_job(client, submit_raw(client, np.stack([gray] * 3, axis=-1), "rgb16").json()["id"])
    assert job["layers"][0]["format"] == "rgb16"
    rgb = np.frombuffer(client.get(f"/v1/jobs/{job['id']}/layers/0").content, "<u2").reshape(48, 64, 3)
    assert rgb.max() > 255  # really 16-bit
    assert np.median(np.abs(colour.rgb_to_lightness(rgb) - colour.gray_to_lightness(gray))) < 0.05


def test_png_round_trip(client):
    buffer = io.BytesIO()
    Image.fromarray(gradient(30, 40)).save(buffer, format="PNG")
    job = wait_job(
        client, client.post("/v1/jobs", content=buffer.getvalue(), headers={"Content-Type": "image/png"}).json()["id"]
    )
    response = client.get(f"/v1/jobs/{job['id']}/layers/0", params={"encoding": "png"})
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert (image.mode, image.size) == ("RGB", (40, 30))


@pytest.mark.parametrize(
    "case",
    [
        "too_many_pixels",
        "wrong_raw_length",
        "corrupt_png",
        "unknown_model",
        "unknown_mode",
        "malformed_samples",
        "missing_size",
        "body_too_large",
        "body_too_large_chunked",
    ],
)
def test_limits_and_bad_input(daemon, client, case):
    if case == "too_many_pixels":
        response = client.post(
            "/v1/jobs", params={"width": 2000, "height": 2000, "format": "gray8"}, content=b"\0", headers=RAW
        )
        assert_envelope(response, 413, "image_too_large")
    elif case == "wrong_raw_length":
        response = client.post(
            "/v1/jobs", params={"width": 10, "height": 10, "format": "rgb8"}, content=b"\0" * 299, headers=RAW
        )
        assert_envelope(response, 400, "invalid_image")
    elif case == "corrupt_png":
        response = client.post(
            "/v1/jobs", content=b"\x89PNG\r\n\x1a\n" + b"\x07" * 500, headers={"Content-Type": "image/png"}
        )
        assert_envelope(response, 400, "invalid_image")
    elif case == "unknown_model":
        assert_envelope(submit_raw(client, gradient(4, 4), "gray8", model="no-such-model"), 404, "unknown_model")
    elif case == "unknown_mode":
        assert_envelope(submit_raw(client, gradient(4, 4), "gray8", mode="sepia"), 400, "unknown_mode")
    elif case == "malformed_samples":
        assert_envelope(submit_raw(client, gradient(4, 4), "gray8", samples="lots"), 400, "bad_request")
    elif case == "missing_size":
        assert_envelope(client.post("/v1/jobs", content=b"\0" * 16, headers=RAW), 400, "bad_request")
    elif case == "body_too_large":
        response = client.post("/v1/jobs", content=b"\0" * (MAX_BODY + 1), headers={"Content-Type": "image/png"})
        assert_envelope(response, 413, "body_too_large")
    else:
        chunks = (b"\0" * 1_000_000 for _ in range(MAX_BODY // 1_000_000 + 1))
        response = client.post("/v1/jobs", content=chunks, headers={"Content-Type": "image/tiff"})
        assert_envelope(response, 413, "body_too_large")
    assert_still_serving(daemon)


def test_unknown_job_and_layer(client):
    assert_envelope(client.get("/v1/jobs/does-not-exist"), 404, "job_not_found")
    job = wait_job(client, submit_raw(client, gradient(8, 8), "gray8").json()["id"])
    assert_envelope(client.get(f"/v1/jobs/{job['id']}/layers/3"), 400, "bad_request")


def test_cancel(daemon, client):
    big = gradient(900, 1000)  # takes long enough that the cancel lands while it is queued or running
    job_id = submit_raw(client, big, "gray8").json()["id"]
    assert client.delete(f"/v1/jobs/{job_id}").json() == {"id": job_id, "state": "cancelled"}
    assert wait_job(client, job_id)["state"] == "cancelled"
    assert_envelope(client.get(f"/v1/jobs/{job_id}/layers/0"), 409, "job_not_finished")
    assert_still_serving(daemon)


def test_eight_concurrent_clients(daemon):
    results, errors = {}, []

    def one_client(number):
        try:
            with daemon.client() as client:
                gray = gradient(32 + number, 40)
                job = wait_job(client, submit_raw(client, gray, "gray8").json()["id"])
                pixels = client.get(f"/v1/jobs/{job['id']}/layers/0").content
                results[number] = np.frombuffer(pixels, np.uint8).reshape(32 + number, 40, 3)
        except Exception as exc:  # reported below with the client's number
            errors.append((number, repr(exc)))

    threads = [threading.Thread(target=one_client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sorted(results) == list(range(8))
    assert all(rgb.shape == (32 + n, 40, 3) for n, rgb in results.items())  # nobody got someone else's result


def test_client_errors_leave_no_traceback_in_the_log(daemon):
    # runs last in this module: every bad request above was answered without an unhandled exception
    log = daemon.log_file.read_text()
    assert "serving on" in log
    assert "Traceback" not in log


def rss_bytes(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def idle_upload(url: str, token: str, declared: int) -> socket.socket:
    """An authenticated upload that declares `declared` bytes and sends only its headers."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(
        f"POST /v1/jobs HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: image/png\r\nContent-Length: {declared}\r\n\r\n".encode() + b"\x89PNG"
    )
    return sock


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the daemon's memory from /proc")
def test_declared_body_sizes_cost_no_memory_and_stalled_uploads_time_out(tmp_path_factory):
    big = start_daemon(tmp_path_factory.mktemp("bodies"), config={"body_timeout_s": 2})
    try:
        before = rss_bytes(big.process.pid)
        sockets = [idle_upload(big.url, big.token, 256 << 20) for _ in range(3)]  # 3 x 256 MiB declared
        time.sleep(1.0)
        grown = rss_bytes(big.process.pid) - before
        assert grown < 64 << 20, f"the daemon grew by {grown >> 20} MiB for three idle uploads"
        for sock in sockets:
            sock.settimeout(10)
            answer = b""
            while chunk := sock.recv(65536):  # the daemon answers 408 and closes the connection
                answer += chunk
            sock.close()
            assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer, answer[:200]
        assert_still_serving(big)
    finally:
        assert big.stop() == 0
