import gc
import threading
import time
import weakref
from dataclasses import dataclass

import numpy as np
import pytest

from gimp_colorize.errors import BadRequest, InvalidImage, JobCancelled, JobNotFinished, JobNotFound, QueueFull
from gimp_colorize.jobs import JobManager


@dataclass
class FakeLayer:
    name: str
    pixels: np.ndarray


@dataclass
class FakeResult:
    layers: list


class FakeEngine:
    """Inverts the image through three stages; `gate` lets a test hold a run inside a stage."""

    def __init__(self):
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.fail_with = None

    def colorize(self, image, options, progress=None, cancelled=None):
        self.started.set()
        for number, stage in enumerate(("preprocess", "inference", "recombine")):
            if cancelled():
                raise JobCancelled("cancelled")
            progress(stage, number / 3)
            self.gate.wait(5)
        if self.fail_with:
            raise self.fail_with
        return FakeResult([FakeLayer(f"sample {i}", 255 - image) for i in range(getattr(options, "samples", 1))])


class Options:
    samples = 1


def wait_for(manager, job_id, states=("done", "failed", "cancelled"), timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = manager.get(job_id)
        if view.state in states:
            return view
        time.sleep(0.01)
    raise AssertionError(f"job stayed {manager.get(job_id).state}")


@pytest.fixture
def engine():
    return FakeEngine()


@pytest.fixture
def manager(engine):
    manager = JobManager(engine, workers=1, queue_size=2)
    yield manager
    engine.gate.set()
    manager.shutdown()


def test_job_runs_to_done(manager):
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    view = manager.submit(image, Options())
    assert view.state in ("queued", "running")
    done = wait_for(manager, view.id)
    assert (done.state, done.stage, done.progress, done.error) == ("done", "done", 1.0, None)
    np.testing.assert_array_equal(manager.layer(view.id, 0).pixels, 255 - image)
    with pytest.raises(BadRequest, match="index 1"):
        manager.layer(view.id, 1)


def test_progress_is_reported_while_running(manager, engine):
    engine.gate.clear()
    view = manager.submit(np.zeros((2, 2), np.uint8), Options())
    running = wait_for(manager, view.id, states=("running",))
    assert running.stage == "preprocess"
    with pytest.raises(JobNotFinished):
        manager.layer(view.id, 0)
    engine.gate.set()
    assert wait_for(manager, view.id).state == "done"


def test_typed_failure_is_kept(manager, engine):
    engine.fail_with = InvalidImage("bad pixels")
    view = wait_for(manager, manager.submit(np.zeros((2, 2), np.uint8), Options()).id)
    assert view.state == "failed"
    assert view.error.code == "invalid_image"


def test_unexpected_exception_fails_the_job_not_the_worker(manager, engine):
    engine.fail_with = ZeroDivisionError("oops")
    failed = wait_for(manager, manager.submit(np.zeros((2, 2), np.uint8), Options()).id)
    assert failed.state == "failed" and failed.error.code == "internal_error"
    engine.fail_with = None
    assert wait_for(manager, manager.submit(np.zeros((2, 2), np.uint8), Options()).id).state == "done"


def test_queue_is_bounded(manager, engine):
    engine.gate.clear()
    first = manager.submit(np.zeros((2, 2), np.uint8), Options())
    engine.started.wait(5)
    wait_for(manager, first.id, states=("running",))
    manager.submit(np.zeros((2, 2), np.uint8), Options())
    manager.submit(np.zeros((2, 2), np.uint8), Options())
    with pytest.raises(QueueFull):
        manager.submit(np.zeros((2, 2), np.uint8), Options())
    engine.gate.set()


def test_cancel_queued_job_frees_its_slot_and_image(manager, engine):
    engine.gate.clear()
    manager.submit(np.zeros((2, 2), np.uint8), Options())
    engine.started.wait(5)
    image = np.zeros((64, 64), np.uint8)
    image_ref = weakref.ref(image)
    queued = manager.submit(image, Options())
    del image
    assert manager.cancel(queued.id).state == "cancelled"
    gc.collect()
    assert image_ref() is None
    manager.submit(np.zeros((2, 2), np.uint8), Options())
    manager.submit(np.zeros((2, 2), np.uint8), Options())  # the cancelled job no longer takes a slot
    engine.gate.set()


def test_cancel_running_job_stops_at_next_stage_and_drops_result(manager, engine):
    engine.gate.clear()
    view = manager.submit(np.zeros((2, 2), np.uint8), Options())
    wait_for(manager, view.id, states=("running",))
    assert manager.cancel(view.id).state == "cancelled"
    engine.gate.set()
    time.sleep(0.1)
    final = manager.get(view.id)
    assert final.state == "cancelled" and final.layers == ()
    with pytest.raises(JobNotFinished):
        manager.layer(view.id, 0)


def test_cancel_done_job_releases_result(manager):
    view = wait_for(manager, manager.submit(np.zeros((4, 4, 3), np.uint8), Options()).id)
    assert len(view.layers) == 1
    assert manager.cancel(view.id).state == "cancelled"
    assert manager.get(view.id).layers == ()


def test_unknown_job():
    manager = JobManager(FakeEngine())
    try:
        with pytest.raises(JobNotFound):
            manager.get("nope")
        with pytest.raises(JobNotFound):
            manager.cancel("nope")
    finally:
        manager.shutdown()


def test_finished_jobs_expire_after_ttl():
    now = [0.0]
    manager = JobManager(FakeEngine(), ttl_s=60, clock=lambda: now[0])
    try:
        job = wait_for(manager, manager.submit(np.zeros((2, 2), np.uint8), Options()).id)
        now[0] = 59
        assert manager.get(job.id).state == "done"
        now[0] = 61
        with pytest.raises(JobNotFound):
            manager.get(job.id)
    finally:
        manager.shutdown()


def test_finished_jobs_are_capped():
    manager = JobManager(FakeEngine(), queue_size=10, max_finished=3)
    try:
        ids = [wait_for(manager, manager.submit(np.zeros((2, 2), np.uint8), Options()).id).id for _ in range(5)]
        assert manager.counts() == {"done": 3}
        with pytest.raises(JobNotFound):
            manager.get(ids[0])
        assert manager.get(ids[-1]).state == "done"
    finally:
        manager.shutdown()


def test_many_threads_submit_safely():
    manager = JobManager(FakeEngine(), workers=2, queue_size=100, max_finished=100)
    ids, errors = [], []

    def client():
        try:
            ids.append(manager.submit(np.ones((3, 3), np.uint8), Options()).id)
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not errors and len(set(ids)) == 16
        assert all(wait_for(manager, job_id).state == "done" for job_id in ids)
    finally:
        manager.shutdown()


def test_finished_results_share_a_memory_budget():
    manager = JobManager(FakeEngine(), queue_size=10, max_result_bytes=2 * 100 * 100)
    try:
        ids = [wait_for(manager, manager.submit(np.zeros((100, 100), np.uint8), Options()).id).id for _ in range(3)]
        with pytest.raises(JobNotFound):
            manager.get(ids[0])  # the oldest result went over the budget
        assert [manager.get(i).state for i in ids[1:]] == ["done", "done"]
        big = wait_for(manager, manager.submit(np.zeros((300, 300), np.uint8), Options()).id)
        assert manager.get(big.id).state == "done"  # the newest is kept even alone over the budget
        assert manager.counts() == {"done": 1}
    finally:
        manager.shutdown()


def test_reservations_count_against_the_queue_and_free_their_place(engine):
    manager = JobManager(engine, workers=1, queue_size=2)
    try:
        first, second = manager.reserve(), manager.reserve()
        with pytest.raises(QueueFull) as busy:
            manager.reserve()
        assert busy.value.jobs_ahead == 2 and busy.value.retry_after_s >= 1
        assert busy.value.envelope_fields() == {"jobs_ahead": 2}
        assert busy.value.headers() == {"Retry-After": str(busy.value.retry_after_s)}
        first.release()
        with manager.reserve() as third:  # the released place is free again
            view = third.submit(np.zeros((2, 2), np.uint8), Options())
        second.release()
        second.release()  # idempotent
        assert wait_for(manager, view.id).state == "done"
        assert manager.jobs_ahead() == 0
    finally:
        manager.shutdown()


def test_queue_position_counts_running_and_earlier_jobs(manager, engine):
    engine.gate.clear()
    running = manager.submit(np.zeros((2, 2), np.uint8), Options())
    assert engine.started.wait(5)
    queued = [manager.submit(np.zeros((2, 2), np.uint8), Options()) for _ in range(2)]
    assert [manager.get(v.id).queue_position for v in (running, *queued)] == [0, 1, 2]
    manager.cancel(queued[0].id)
    assert manager.get(queued[1].id).queue_position == 1


def test_version_grows_on_every_visible_change(manager, engine):
    engine.gate.clear()
    first = manager.submit(np.zeros((2, 2), np.uint8), Options())
    assert engine.started.wait(5)
    second = manager.submit(np.zeros((2, 2), np.uint8), Options())
    versions = [manager.get(second.id).version]
    engine.gate.set()
    wait_for(manager, first.id)
    done = wait_for(manager, second.id)
    assert done.version > versions[0] + 3  # moved up, started, stages, done
    assert manager.get(first.id).version > 1


def test_watch_calls_back_on_change_and_not_after_unwatch(manager, engine):
    engine.gate.clear()
    view = manager.submit(np.zeros((2, 2), np.uint8), Options())
    assert engine.started.wait(5)
    calls = []
    now, unwatch = manager.watch(view.id, manager.get(view.id).version, lambda: calls.append(1))
    assert unwatch is not None
    engine.gate.set()
    wait_for(manager, view.id)
    assert calls, "no callback on progress or completion"
    unwatch()
    count = len(calls)
    manager.cancel(view.id)
    assert len(calls) == count
    _, none = manager.watch(view.id, 0, lambda: calls.append(1))  # finished: nothing to wait for
    assert none is None
