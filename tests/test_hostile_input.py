"""Hostile and broken uploads: the corpus (tests/support/hostile_corpus.py) against the decoder and the HTTP API.

Every bad upload must end in a 4xx with the error envelope and a sentence free of Python reprs and of
Pillow's own limits; the server must stop reading a body as soon as it knows the answer.
"""

import asyncio
import re
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from gimp_colorize import imageio
from gimp_colorize.config import load_settings
from gimp_colorize.errors import ImageTooLarge, InvalidImage
from gimp_colorize.jobs import JobManager
from gimp_colorize.server import create_app
from tests.support import asgi_driver, hostile_corpus
from tests.support.asgi_driver import Upload
from tests.test_api_app import TOKEN, FakeEngine

MAX_PIXELS = 10_000
MAX_BODY = 200_000
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REPR = re.compile(r"<[^>]*(object|at 0x)[^>]*>|0x[0-9a-f]{6,}")
PILLOW_TEXT = ("decompression bomb", "DOS attack", "cannot identify image file")


def assert_clean_message(message: str) -> None:
    assert message and not REPR.search(message), message
    assert not any(text.lower() in message.lower() for text in PILLOW_TEXT), message


@pytest.fixture
def settings(tmp_path):
    settings = load_settings(
        env={"GIMP_COLORIZE_CONFIG_DIR": str(tmp_path / "c"), "GIMP_COLORIZE_STATE_DIR": str(tmp_path / "s")}
    )
    settings.token_file.parent.mkdir(parents=True)
    settings.token_file.write_text(TOKEN)
    settings.token_file.chmod(0o600)
    settings.max_pixels = MAX_PIXELS
    settings.max_body_bytes = MAX_BODY
    settings.upload_budget_bytes = MAX_BODY
    settings.body_timeout_s = 0.3
    return settings


@pytest.fixture
def app_and_jobs(settings):
    engine = FakeEngine()
    jobs = JobManager(engine, queue_size=2)
    yield create_app(settings, engine, jobs), jobs, engine
    engine.delay = 0
    jobs.shutdown()


def post(app, upload, content_type="image/png", query=None, headers=None):
    return asgi_driver.run(
        asgi_driver.request(app, "POST", "/v1/jobs", query=query, upload=upload,
                            headers={**AUTH, "Content-Type": content_type, **(headers or {})})
    )


def chunked(data: bytes, size: int = 10_000) -> Upload:
    return Upload([data[i : i + size] for i in range(0, len(data), size)] or [b""])


# -- the decoder (also what `gimp-colorize colorize` reads files with)


@pytest.mark.parametrize("name,content_type,data", hostile_corpus.file_uploads(), ids=lambda v: v if isinstance(v, str) else "")
def test_decoder_refuses_every_bad_file_with_a_clean_sentence(name, content_type, data):
    with pytest.raises((InvalidImage, ImageTooLarge)) as caught:
        imageio.decode_file(data, MAX_PIXELS)
    assert_clean_message(caught.value.message)


def test_zero_bytes_is_empty():
    with pytest.raises(InvalidImage, match="empty"):
        imageio.decode_file(b"", MAX_PIXELS)


@pytest.mark.parametrize("fmt,arrays", [("GIF", 1), ("BMP", 1), ("WEBP", 3)])
def test_other_pillow_formats_are_not_decoded_and_named(fmt, arrays):
    pixels = hostile_corpus.noise(8, 8) if arrays == 1 else np.stack([hostile_corpus.noise(8, 8)] * 3, -1)
    with pytest.raises(InvalidImage, match="only PNG, JPEG and TIFF"):
        imageio.decode_file(hostile_corpus.encode(pixels, fmt), MAX_PIXELS)


def test_bomb_messages_state_our_limit_not_pillows():
    for width, height in ((10_000, 10_000), (20_000, 20_000)):  # above Pillow's warning / its hard refusal
        with pytest.raises(ImageTooLarge, match=r"the limit is 0\.0") as caught:
            imageio.decode_file(hostile_corpus.png_header_only(width, height), MAX_PIXELS)
        assert_clean_message(caught.value.message)
    with pytest.raises(ImageTooLarge, match=r"4\.0 megapixels; the limit is 0\.0"):
        imageio.decode_file(hostile_corpus.png_zero_bomb(2_000), MAX_PIXELS)


def test_pillows_global_limit_does_not_refuse_what_ours_allows(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # lowered by someone else in the process
    png = hostile_corpus.encode(np.zeros((30, 30), np.uint8), "PNG")  # 900 pixels > 2 x 100
    assert imageio.decode_file(png, max_pixels=10_000).shape == (30, 30)
    with pytest.raises(ImageTooLarge, match="30 x 30"):
        imageio.decode_file(png, max_pixels=800)


def test_cli_reader_keeps_messages_clear(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InvalidImage, match="empty"):
        imageio.read_image(empty, MAX_PIXELS)
    gif = tmp_path / "photo.png"
    gif.write_bytes(hostile_corpus.encode(hostile_corpus.noise(8, 8), "GIF"))
    with pytest.raises(InvalidImage, match="GIF") as caught:
        imageio.read_image(gif, MAX_PIXELS)
    assert_clean_message(caught.value.message)


# -- the HTTP API


@pytest.mark.parametrize("name,content_type,data", hostile_corpus.file_uploads(), ids=lambda v: v if isinstance(v, str) else "")
def test_api_refuses_every_bad_file_with_an_envelope(app_and_jobs, name, content_type, data):
    app, _, _ = app_and_jobs
    answer = post(app, chunked(data), content_type)
    assert answer.status in (400, 413), answer.body
    assert answer.error["code"] in ("invalid_image", "image_too_large")
    assert_clean_message(answer.error["message"])
    if name == "zero_bytes":
        assert "empty" in answer.error["message"]


@pytest.mark.parametrize("name,query,data", hostile_corpus.raw_uploads(), ids=lambda v: v if isinstance(v, str) else "")
def test_api_refuses_wrong_raw_lengths(app_and_jobs, name, query, data):
    app, _, _ = app_and_jobs
    answer = post(app, Upload([data]), "application/octet-stream", query=query,
                  headers={"Content-Length": str(len(data))})
    assert answer.status == 400 and answer.error["code"] == "invalid_image"
    assert_clean_message(answer.error["message"])


@pytest.mark.parametrize("query", hostile_corpus.absurd_sizes())
def test_absurd_sizes_are_refused_before_the_body_is_read(app_and_jobs, query):
    app, _, _ = app_and_jobs
    answer = post(app, Upload([b"\0" * 1000] * 50), "application/octet-stream", query=query)
    assert answer.status == 413 and answer.error["code"] == "image_too_large"
    assert answer.consumed == 0


def test_oversized_chunked_raw_body_is_refused_as_soon_as_it_passes_the_raw_length(app_and_jobs):
    app, _, _ = app_and_jobs
    body = Upload([b"\0" * 65_536] * 80)  # 5 MiB, no Content-Length, for a 100-byte image
    answer = post(app, body, "application/octet-stream", query={"width": 10, "height": 10, "format": "gray8"})
    assert answer.status == 400 and "must be 100 bytes" in answer.error["message"]
    assert answer.consumed == 1


def test_oversized_chunked_file_body_is_refused_as_soon_as_it_passes_the_limit(app_and_jobs):
    app, _, _ = app_and_jobs
    answer = post(app, Upload([b"\0" * 10_000] * 500))  # 5 MB, limit 200 kB
    assert answer.status == 413 and answer.error["code"] == "body_too_large"
    assert answer.consumed == MAX_BODY // 10_000 + 1
    assert answer.headers["connection"] == "close"  # the rest of the body is not read


def test_body_buffer_is_not_allocated_from_content_length(settings):
    settings.max_body_bytes = settings.upload_budget_bytes = 64_000_000
    engine = FakeEngine()
    jobs = JobManager(engine)
    app = create_app(settings, engine, jobs)
    tracemalloc.start()
    try:
        answer = post(app, Upload([b"\x89PNG\r\n\x1a\n"]), headers={"Content-Length": "64000000"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        jobs.shutdown()
    assert answer.status == 400  # eight bytes are not an image
    assert peak < 4_000_000, f"{peak} bytes allocated for an 8-byte body that declared 64 MB"


def test_stalled_body_times_out(app_and_jobs, settings):
    app, jobs, _ = app_and_jobs
    answer = post(app, Upload([b"\x89PNG", b"rest"], stall_after=1))
    assert answer.status == 408 and answer.error["code"] == "request_timeout"
    assert str(settings.body_timeout_s) in answer.error["message"]
    assert jobs.jobs_ahead() == 0  # its place in the queue is free again


def test_uploads_share_one_byte_budget(app_and_jobs, settings):
    app, jobs, _ = app_and_jobs
    settings_budget = settings.upload_budget_bytes

    async def two_uploads():
        first_release = asyncio.Event()
        first = asyncio.create_task(asgi_driver.request(
            app, "POST", "/v1/jobs", headers={**AUTH, "Content-Type": "image/png"},
            upload=Upload([b"\0" * 50_000] * 3 + [b"\0"], stall_after=3, release=first_release)))
        await asyncio.sleep(0.05)  # the first holds 150 kB of the 200 kB budget
        second = await asgi_driver.request(
            app, "POST", "/v1/jobs", headers={**AUTH, "Content-Type": "image/png"},
            upload=Upload([b"\0" * 50_000] * 3))
        first_release.set()
        return await first, second

    first, second = asgi_driver.run(two_uploads())
    assert settings_budget == 200_000
    assert second.status == 503 and second.error["code"] == "busy" and "uploads" in second.error["message"]
    assert int(second.headers["retry-after"]) >= 1 and second.error["jobs_ahead"] >= 1
    assert first.status == 400  # it went on, and zeros are no image
