"""The HTTP API in-process (FastAPI TestClient) with a fake engine: routes, auth, envelopes, limits.

tests/test_server_http.py runs the same kind of checks against a real daemon process and real models.
"""

import io
import time
from dataclasses import dataclass

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from gimp_colorize.config import load_settings
from gimp_colorize.engine import ColorizeOptions
from gimp_colorize.errors import NoModelInstalled, UnknownModel
from gimp_colorize.jobs import JobManager


@dataclass
class Layer:
    name: str
    pixels: np.ndarray


@dataclass
class Result:
    layers: list
    timings: dict


@dataclass
class ModelEntry:
    name: str

    def to_json(self):
        return {"name": self.name, "task": "full", "version": "1.0.0", "verified": True, "default": True}


@dataclass
class Rejection:
    file: str
    reason: str

    def to_json(self):
        return {"file": self.file, "reason": self.reason}


class FakeRegistry:
    def __init__(self, names):
        self.names = names

    def refresh(self):
        pass

    def models(self):
        return [ModelEntry(name) for name in self.names]

    def rejected(self):
        return [Rejection("broken.onnx", "truncated file")]

    def resolve(self, mode, model):
        if not self.names:
            raise NoModelInstalled(f"no trained model installed for mode '{mode}'")
        if model is not None and model not in self.names:
            raise UnknownModel(f"no model named '{model}'")
        return model or self.names[0]


class FakeEngine:
    """Gray in, RGB out: a tinted copy of the lightness, one layer per sample; `delay` slows it down."""

    def __init__(self, names=("tiny",)):
        self.registry = FakeRegistry(list(names))
        self.delay = 0.0
        self.seen_options = []

    def colorize(self, image, options, progress=None, cancelled=None):
        self.seen_options.append(options)
        gray = image if image.ndim == 2 else image[..., 0]
        for stage in ("preprocess", "inference", "recombine"):
            if cancelled():
                from gimp_colorize.errors import JobCancelled

                raise JobCancelled("cancelled")
            progress(stage, 0.5)
            time.sleep(self.delay)
        rgb = np.stack([gray, gray // 2, gray // 4], axis=-1)
        return Result([Layer(f"colorized {i + 1}", rgb) for i in range(options.samples)], {"inference": 0.25})

    def resolve(self, options):
        options.validate()
        return self.registry.resolve(options.mode, options.model)

    def providers(self):
        return ["CPUExecutionProvider"]

    def loaded_models(self):
        return []


TOKEN = "test-token-0123456789-abcdef"


@pytest.fixture
def settings(tmp_path):
    settings = load_settings(
        env={"GIMP_COLORIZE_CONFIG_DIR": str(tmp_path / "c"), "GIMP_COLORIZE_STATE_DIR": str(tmp_path / "s")}
    )
    settings.token_file.parent.mkdir(parents=True)
    settings.token_file.write_text(TOKEN)
    settings.token_file.chmod(0o600)
    settings.max_pixels = 10_000
    settings.max_body_bytes = 200_000
    return settings


def make_client(settings, engine):
    from gimp_colorize.server import create_app

    jobs = JobManager(engine, queue_size=2)
    # the daemon answers only requests addressed to its own host and port (DNS rebinding protection)
    client = TestClient(
        create_app(settings, engine, jobs), base_url=f"http://{settings.host}:{settings.port}", raise_server_exceptions=False
    )
    client.headers["Authorization"] = f"Bearer {TOKEN}"
    return client, jobs


@pytest.fixture
def engine():
    return FakeEngine()


@pytest.fixture
def client(settings, engine):
    client, jobs = make_client(settings, engine)
    with client:
        yield client
    jobs.shutdown()


def submit_raw(client, pixels, fmt, **params):
    height, width = pixels.shape[:2]
    query = {"width": width, "height": height, "format": fmt, **params}
    return client.post(
        "/v1/jobs", params=query, content=pixels.tobytes(), headers={"Content-Type": "application/octet-stream"}
    )


def wait_done(client, job_id):
    for _ in range(500):
        body = client.get(f"/v1/jobs/{job_id}").json()
        if body["state"] in ("done", "failed", "cancelled"):
            return body
        time.sleep(0.01)
    raise AssertionError("job did not finish")


def assert_envelope(response, status, code):
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


def test_health_needs_no_token(client):
    body = client.get("/v1/health", headers={"Authorization": ""}).json()
    assert body["status"] == "ok" and body["providers"] == ["CPUExecutionProvider"] and body["models_available"] == 1


def test_models_lists_models_and_rejections(client):
    body = client.get("/v1/models").json()
    assert [m["name"] for m in body["models"]] == ["tiny"]
    assert body["rejected"] == [{"file": "broken.onnx", "reason": "truncated file"}]


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dGVzdA==", "Bearer"])
def test_auth_required(client, header):
    headers = {"Authorization": header} if header else {}
    client.headers.pop("Authorization")
    for method, path in (("GET", "/v1/models"), ("GET", "/v1/jobs/x"), ("DELETE", "/v1/jobs/x"), ("POST", "/v1/jobs")):
        assert_envelope(client.request(method, path, headers=headers), 401, "unauthorized")


def test_raw_round_trip_8_bit(client):
    gray = np.arange(30, dtype=np.uint8).reshape(5, 6) * 8
    submitted = submit_raw(client, gray, "gray8")
    assert submitted.status_code == 202 and submitted.json()["state"] in ("queued", "running")
    job = wait_done(client, submitted.json()["id"])
    assert job["layers"] == [{"index": 0, "name": "colorized 1", "width": 6, "height": 5, "format": "rgb8",
                             "group": None, "visible": True, "mask": False, "details": {}}]
    assert job["timings"] == {"inference": 0.25}
    raw = client.get(f"/v1/jobs/{job['id']}/layers/0")
    assert raw.headers["x-format"] == "rgb8" and raw.headers["x-width"] == "6"
    pixels = np.frombuffer(raw.content, np.uint8).reshape(5, 6, 3)
    np.testing.assert_array_equal(pixels[..., 0], gray)


def test_raw_16_bit_and_png_download(client):
    gray = np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000
    job = wait_done(client, submit_raw(client, gray.astype("<u2"), "gray16").json()["id"])
    assert job["layers"][0]["format"] == "rgb16"
    png = client.get(f"/v1/jobs/{job['id']}/layers/0", params={"encoding": "png"})
    assert png.headers["content-type"] == "image/png"
    assert png.content[24] == 16  # 16-bit PNG


def test_png_upload_and_options_reach_the_engine(client, engine):
    buffer = io.BytesIO()
    Image.fromarray(np.full((3, 4), 200, np.uint8)).save(buffer, format="PNG")
    response = client.post(
        "/v1/jobs",
        params={"samples": 2, "temperature": 0.5, "seed": 7, "model": "tiny"},
        content=buffer.getvalue(),
        headers={"Content-Type": "image/png"},
    )
    job = wait_done(client, response.json()["id"])
    assert len(job["layers"]) == 2
    assert engine.seen_options[-1] == ColorizeOptions(mode="full", model="tiny", temperature=0.5, samples=2, seed=7)


@pytest.mark.parametrize(
    "params,status,code",
    [
        ({"mode": "sepia"}, 400, "unknown_mode"),
        ({"model": "nope"}, 404, "unknown_model"),
        ({"samples": "many"}, 400, "bad_request"),
        ({"samples": 0}, 400, "bad_request"),
        ({"temperature": "-1"}, 400, "bad_request"),
        ({"width": "abc"}, 400, "bad_request"),
        ({"format": "rgb12"}, 400, "invalid_image"),
        ({"width": 200, "height": 200}, 413, "image_too_large"),
        ({"width": 3}, 400, "invalid_image"),  # wrong raw length for 3 x 2
    ],
)
def test_bad_submissions_get_an_envelope(client, params, status, code):
    query = {"width": 2, "height": 2, "format": "gray8", **params}
    response = client.post(
        "/v1/jobs", params=query, content=b"\0" * 4, headers={"Content-Type": "application/octet-stream"}
    )
    assert_envelope(response, status, code)


def test_missing_raw_parameters_and_content_type(client):
    assert_envelope(
        client.post("/v1/jobs", content=b"\0" * 4, headers={"Content-Type": "application/octet-stream"}),
        400,
        "bad_request",
    )
    assert_envelope(
        client.post("/v1/jobs", content=b"{}", headers={"Content-Type": "application/json"}),
        415,
        "unsupported_media_type",
    )
    assert_envelope(client.post("/v1/jobs", content=b"", headers={"Content-Type": "image/png"}), 400, "invalid_image")


def test_corrupt_png(client):
    response = client.post("/v1/jobs", content=b"\x89PNG\r\n\x1a\nrubbish", headers={"Content-Type": "image/png"})
    assert_envelope(response, 400, "invalid_image")


def test_body_too_large_by_header_and_by_stream(client):
    big = b"\0" * 300_000
    assert_envelope(client.post("/v1/jobs", content=big, headers={"Content-Type": "image/png"}), 413, "body_too_large")

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(30):
            yield b"\0" * 10_000

    assert_envelope(
        client.post("/v1/jobs", content=chunks(), headers={"Content-Type": "image/png"}), 413, "body_too_large"
    )


def test_png_pixel_limit(client):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((200, 200), np.uint8)).save(buffer, format="PNG")
    assert_envelope(
        client.post("/v1/jobs", content=buffer.getvalue(), headers={"Content-Type": "image/png"}),
        413,
        "image_too_large",
    )


def test_no_model_installed(settings):
    client, jobs = make_client(settings, FakeEngine(names=()))
    with client:
        assert_envelope(submit_raw(client, np.zeros((2, 2), np.uint8), "gray8"), 409, "no_model_installed")
    jobs.shutdown()


def test_job_routes_errors(client):
    assert_envelope(client.get("/v1/jobs/unknown"), 404, "job_not_found")
    assert_envelope(client.delete("/v1/jobs/unknown"), 404, "job_not_found")
    assert_envelope(client.get("/v1/jobs/unknown/layers/0"), 404, "job_not_found")
    job = wait_done(client, submit_raw(client, np.zeros((2, 2), np.uint8), "gray8").json()["id"])
    assert_envelope(client.get(f"/v1/jobs/{job['id']}/layers/5"), 400, "bad_request")
    assert_envelope(client.get(f"/v1/jobs/{job['id']}/layers/0", params={"encoding": "gif"}), 400, "bad_request")
    assert_envelope(client.get("/v1/nowhere"), 404, "not_found")


def test_cancel_running_job(client, engine):
    engine.delay = 0.2
    job_id = submit_raw(client, np.zeros((2, 2), np.uint8), "gray8").json()["id"]
    assert client.delete(f"/v1/jobs/{job_id}").json() == {"id": job_id, "state": "cancelled"}
    assert wait_done(client, job_id)["state"] == "cancelled"
    assert_envelope(client.get(f"/v1/jobs/{job_id}/layers/0"), 409, "job_not_finished")


def test_queue_full_is_503(client, engine):
    engine.delay = 0.3
    statuses = [submit_raw(client, np.zeros((2, 2), np.uint8), "gray8").status_code for _ in range(5)]
    assert statuses.count(202) >= 3 and statuses[-1] == 503


def test_internal_errors_are_an_envelope_without_traceback(client, engine, caplog):
    engine.registry.resolve = lambda mode, model: 1 / 0
    response = submit_raw(client, np.zeros((2, 2), np.uint8), "gray8")
    assert_envelope(response, 500, "internal_error")
    assert "Traceback" not in response.text and "ZeroDivisionError" not in response.text
    assert "ZeroDivisionError" in caplog.text  # but the log has it


def test_openapi_document_is_public(client):
    doc = client.get("/openapi.json", headers={"Authorization": ""}).json()
    assert {"/v1/health", "/v1/models", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/layers/{index}"} <= set(
        doc["paths"]
    )
