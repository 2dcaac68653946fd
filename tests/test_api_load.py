"""The API under load and from the wrong places: busy answers, queue positions, versions, long-polls, Host checks.

In-process (tests/support/asgi_driver.py drives the ASGI app) with a fake engine whose runs a test holds.
"""

import asyncio
import threading
import time

import pytest

from gimp_colorize.config import load_settings
from gimp_colorize.jobs import JobManager
from gimp_colorize.server import create_app, split_host_header
from tests.support import asgi_driver
from tests.support.asgi_driver import Upload
from tests.test_api_app import TOKEN, FakeEngine

AUTH = {"Authorization": f"Bearer {TOKEN}"}
RAW = {**AUTH, "Content-Type": "application/octet-stream"}
TINY = {"width": 2, "height": 2, "format": "gray8"}


class GatedEngine(FakeEngine):
    """Each run waits in its first stage until the test opens the gate."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.running = threading.Event()

    def colorize(self, image, options, progress=None, cancelled=None):
        self.running.set()
        self.gate.wait(10)
        return super().colorize(image, options, progress, cancelled)


@pytest.fixture
def settings(tmp_path):
    settings = load_settings(
        env={"GIMP_COLORIZE_CONFIG_DIR": str(tmp_path / "c"), "GIMP_COLORIZE_STATE_DIR": str(tmp_path / "s")}
    )
    settings.token_file.parent.mkdir(parents=True)
    settings.token_file.write_text(TOKEN)
    settings.token_file.chmod(0o600)
    return settings


@pytest.fixture
def gated(settings):
    engine = GatedEngine()
    jobs = JobManager(engine, queue_size=2)
    yield create_app(settings, engine, jobs), jobs, engine
    engine.gate.set()
    jobs.shutdown()


def call(app, method, path, **kwargs):
    return asgi_driver.run(asgi_driver.request(app, method, path, **kwargs))


def submit(app, **kwargs):
    return call(app, "POST", "/v1/jobs", query=TINY, headers=RAW, upload=Upload([b"\0" * 4]), **kwargs)


def fill_queue(app, engine):
    """One job running (held by the gate) and two waiting: the queue of 2 is full."""
    ids = [submit(app).json()["id"]]
    assert engine.running.wait(5)
    ids += [submit(app).json()["id"] for _ in range(2)]
    return ids


# -- busy


def test_busy_comes_before_the_body_with_retry_after_and_jobs_ahead(gated):
    app, _, engine = gated
    fill_queue(app, engine)
    answer = call(app, "POST", "/v1/jobs", query=TINY, headers=RAW, upload=Upload([b"\0" * 4]))
    assert answer.status == 503 and answer.error["code"] == "busy"
    assert answer.consumed == 0, "the body was read before answering busy"
    assert answer.error["jobs_ahead"] == 3  # one running, two queued
    assert int(answer.headers["retry-after"]) >= 1


def test_busy_comes_before_a_file_is_decoded(gated, monkeypatch):
    from gimp_colorize import imageio

    app, _, engine = gated
    fill_queue(app, engine)
    decoded = []
    monkeypatch.setattr(imageio, "decode_file", lambda *a: decoded.append(a))
    answer = call(app, "POST", "/v1/jobs", headers={**AUTH, "Content-Type": "image/png"}, upload=Upload([b"png"]))
    assert answer.status == 503 and not decoded and answer.consumed == 0


def test_an_upload_in_progress_holds_its_place(gated):
    app, jobs, engine = gated
    submit(app)
    assert engine.running.wait(5)

    async def scenario():
        release = asyncio.Event()
        slow = [asyncio.create_task(asgi_driver.request(
            app, "POST", "/v1/jobs", query=TINY, headers=RAW, upload=Upload([b"\0\0", b"\0\0"], stall_after=1,
                                                                               release=release)))
            for _ in range(2)]
        await asyncio.sleep(0.05)
        third = await asgi_driver.request(app, "POST", "/v1/jobs", query=TINY, headers=RAW, upload=Upload([b"\0" * 4]))
        release.set()
        return third, await asyncio.gather(*slow)

    third, slow = asgi_driver.run(scenario())
    assert third.status == 503 and third.error["jobs_ahead"] == 3 and third.consumed == 0
    assert [answer.status for answer in slow] == [202, 202]


def test_queue_size_is_a_setting(settings):
    settings.queue_size = 5
    from gimp_colorize.daemon import build_job_manager

    engine = GatedEngine()
    jobs = build_job_manager(settings, engine)
    app = create_app(settings, engine, jobs)
    try:
        statuses = [submit(app).status for _ in range(7)]  # one runs, five wait, the seventh is refused
    finally:
        engine.gate.set()
        jobs.shutdown()
    assert statuses == [202] * 6 + [503]


# -- queue position, version, long-poll


def test_queued_jobs_report_their_position_and_versions_grow(gated):
    app, _, engine = gated
    ids = fill_queue(app, engine)
    views = [call(app, "GET", f"/v1/jobs/{job_id}", headers=AUTH).json() for job_id in ids]
    assert [v["queue_position"] for v in views] == [0, 1, 2]
    assert [v["state"] for v in views] == ["running", "queued", "queued"]
    before = views[2]["version"]
    engine.gate.set()
    deadline = time.monotonic() + 5
    while call(app, "GET", f"/v1/jobs/{ids[2]}", headers=AUTH).json()["state"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    done = call(app, "GET", f"/v1/jobs/{ids[2]}", headers=AUTH).json()
    assert done["queue_position"] == 0 and done["version"] > before


def test_long_poll_returns_on_change(gated):
    app, _, engine = gated
    job_id = submit(app).json()["id"]
    assert engine.running.wait(5)
    seen = call(app, "GET", f"/v1/jobs/{job_id}", headers=AUTH).json()["version"]
    threading.Timer(0.2, engine.gate.set).start()
    started = time.monotonic()
    answer = call(app, "GET", f"/v1/jobs/{job_id}", headers=AUTH, query={"wait": 10, "since": seen}).json()
    elapsed = time.monotonic() - started
    assert answer["version"] > seen and 0.15 < elapsed < 5


def test_long_poll_returns_the_current_status_when_the_wait_elapses(gated):
    app, _, engine = gated
    job_id = submit(app).json()["id"]
    assert engine.running.wait(5)
    seen = call(app, "GET", f"/v1/jobs/{job_id}", headers=AUTH).json()["version"]
    started = time.monotonic()
    answer = call(app, "GET", f"/v1/jobs/{job_id}", headers=AUTH, query={"wait": 0.3, "since": seen}).json()
    assert answer["version"] == seen and answer["state"] == "running"
    assert 0.25 < time.monotonic() - started < 3


def test_long_poll_with_an_older_version_answers_at_once(gated):
    app, _, engine = gated
    job_id = submit(app).json()["id"]
    started = time.monotonic()
    call(app, "GET", f"/v1/jobs/{job_id}", headers=AUTH, query={"wait": 10, "since": 0})
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("wait", ["0", "-1", "31", "soon"])
def test_long_poll_bounds(gated, wait):
    app, _, _ = gated
    job_id = submit(app).json()["id"]
    answer = call(app, "GET", f"/v1/jobs/{job_id}", headers=AUTH, query={"wait": wait, "since": 1})
    assert answer.status == 400 and answer.error["code"] == "bad_request"


def test_hundreds_of_waiters_block_neither_the_loop_nor_threads(gated):
    app, _, engine = gated
    job_id = submit(app).json()["id"]
    assert engine.running.wait(5)
    seen = call(app, "GET", f"/v1/jobs/{job_id}", headers=AUTH).json()["version"]
    threads_before = threading.active_count()

    async def scenario():
        waiters = [asyncio.create_task(asgi_driver.request(
            app, "GET", f"/v1/jobs/{job_id}", headers=AUTH, query={"wait": 20, "since": seen})) for _ in range(300)]
        await asyncio.sleep(0.3)
        started = time.monotonic()
        health = await asgi_driver.request(app, "GET", "/v1/health")
        health_s = time.monotonic() - started
        threads_during = threading.active_count()
        engine.gate.set()
        answers = await asyncio.gather(*waiters)
        return health, health_s, threads_during, answers

    health, health_s, threads_during, answers = asgi_driver.run(scenario())
    assert health.status == 200 and health_s < 1.0
    assert threads_during - threads_before < 20, "a thread per waiter"
    assert all(answer.status == 200 and answer.json()["version"] > seen for answer in answers)


# -- Host header, unauthenticated answers, 405


@pytest.mark.parametrize("host", ["evil.example", "evil.example:48765", "127.0.0.1.evil.example:48765",
                                  "127.0.0.1:1234", "localhost:1234", "", "[::1]:48765",
                                  "127.1:48765"])
def test_foreign_host_headers_are_refused(gated, host):
    app, _, _ = gated
    for path in ("/v1/health", "/openapi.json", "/v1/models"):
        answer = call(app, "GET", path, headers=AUTH, host=host)
        assert answer.status == 403 and answer.error["code"] == "forbidden_host", (host, path)


def test_own_address_is_accepted_with_and_without_port(gated):
    app, _, _ = gated
    for host in ("127.0.0.1:48765", "127.0.0.1", "localhost:48765", "LOCALHOST"):
        assert call(app, "GET", "/v1/health", host=host).status == 200


def test_localhost_daemon_accepts_its_names(settings):
    settings.host = "localhost"
    engine = FakeEngine()
    jobs = JobManager(engine)
    app = create_app(settings, engine, jobs)
    try:
        assert call(app, "GET", "/v1/health", host="localhost:48765").status == 200
        assert call(app, "GET", "/v1/health", host="127.0.0.1:48765").status == 200
    finally:
        jobs.shutdown()


def test_remote_daemon_skips_the_host_check(settings):
    settings.host, settings.allow_remote = "0.0.0.0", True
    engine = FakeEngine()
    jobs = JobManager(engine)
    app = create_app(settings, engine, jobs)
    try:
        assert call(app, "GET", "/v1/health", host="photo-server.lan:48765").status == 200
    finally:
        jobs.shutdown()


def test_split_host_header():
    assert split_host_header("127.0.0.1:48765") == ("127.0.0.1", 48765)
    assert split_host_header("[::1]:8") == ("::1", 8)
    assert split_host_header("LocalHost") == ("localhost", None)
    assert split_host_header("a:b") is None and split_host_header("[::1") is None and split_host_header("") is None


def test_unauthenticated_answers_name_no_local_path(gated, settings):
    app, _, _ = gated
    home_parts = {str(settings.token_file), str(settings.token_file.parent), str(settings.state_dir)}
    answers = [
        call(app, "GET", "/v1/models"),
        call(app, "GET", "/v1/models", headers={"Authorization": "Bearer wrong-token-0123456789"}),
        call(app, "POST", "/v1/jobs"),
        call(app, "GET", "/v1/health"),
        call(app, "GET", "/openapi.json"),
        call(app, "GET", "/nowhere"),
    ]
    assert [a.status for a in answers[:3]] == [401, 401, 401]
    for answer in answers:
        text = answer.body.decode()
        assert not any(part in text for part in home_parts), text[:300]
        assert "/tmp/" not in text and "/home/" not in text and "/root" not in text


def test_405_carries_allow(gated):
    app, _, _ = gated
    answer = call(app, "PUT", "/v1/jobs", headers=AUTH)
    assert answer.status == 405 and answer.error["code"] == "method_not_allowed"
    assert answer.headers["allow"] == "POST"
    answer = call(app, "POST", "/v1/health")
    assert answer.status == 405 and answer.headers["allow"] == "GET"


def test_health_names_the_pid(gated):
    import os

    app, _, _ = gated
    assert call(app, "GET", "/v1/health").json()["pid"] == os.getpid()


def test_sixteen_clients_with_five_jobs_each_are_never_refused_by_default(settings):
    from gimp_colorize.daemon import build_job_manager

    engine = FakeEngine()
    engine.delay = 0.002
    jobs = build_job_manager(settings, engine)  # the default queue size
    app = create_app(settings, engine, jobs)

    async def client_loop():
        statuses = []
        for _ in range(5):
            submitted = await asgi_driver.request(app, "POST", "/v1/jobs", query=TINY, headers=RAW,
                                                  upload=Upload([b"\0" * 4]))
            statuses.append(submitted.status)
            if submitted.status != 202:
                continue
            job = submitted.json()
            job["version"] = 0
            while job["state"] not in ("done", "failed", "cancelled"):
                job = (await asgi_driver.request(app, "GET", f"/v1/jobs/{job['id']}", headers=AUTH,
                                                 query={"wait": 5, "since": job["version"]})).json()
            statuses.append(job["state"])
        return statuses

    async def sixteen():
        return await asyncio.gather(*(client_loop() for _ in range(16)))

    try:
        results = asgi_driver.run(sixteen())
    finally:
        jobs.shutdown()
    flat = [status for statuses in results for status in statuses]
    assert flat.count(202) == 80 and flat.count("done") == 80, sorted(set(map(str, flat)))
