"""Colorize jobs: a bounded queue served by worker threads, so the HTTP event loop never runs a model.

A job holds its input image until a worker takes it and its result until it expires. Memory is released
as early as possible: the input when the run ends, everything when the job is cancelled, and finished
jobs nobody collects are dropped after `ttl_s`, when more than `max_finished` are kept, or when their
results together exceed `max_result_bytes` (oldest first; the newest result is always kept).

The queue has `queue_size` places. A submission takes one with `reserve()` before its upload is read,
so a full queue is refused before any byte of the image arrives. Every job has a `version` that
increases whenever what a client sees of it changes (state, stage, progress, queue position); `watch`
calls back on each change, which lets the server answer long-polls without a thread per waiter.
"""

from __future__ import annotations

import collections
import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from .errors import BadRequest, ColorizeError, JobCancelled, JobNotFinished, JobNotFound, QueueFull

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED_STATES = frozenset({DONE, FAILED, CANCELLED})


@dataclass
class Job:
    id: str
    options: object
    image: object  # np.ndarray until a worker is done with it
    state: str = QUEUED
    stage: str = QUEUED
    progress: float = 0.0
    error: ColorizeError | None = None
    result: object = None  # ColorizeResult once done
    finished_at: float | None = None
    started_at: float | None = None
    version: int = 1
    cancel_event: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class JobView:
    """A consistent copy of a job's public state, safe to read outside the lock."""

    id: str
    state: str
    stage: str
    progress: float
    error: ColorizeError | None
    layers: tuple  # of engine Layer objects (only when done)
    timings: dict  # seconds per engine stage (only when done)
    clipped_pixels: int  # pixels whose lightness gamut clipping moved by more than one level (only when done)
    version: int = 1  # increases on every change of state, stage, progress or queue position
    queue_position: int = 0  # jobs ahead of this one (running ones and those queued before it); 0 once it runs
    model: str | None = None  # the model that ran (only when done)
    details: dict = field(default_factory=dict)  # mode-specific facts of the result, e.g. instance boxes (only when done)


class Reservation:
    """A place in the queue held while the submission's body is read; submit() fills it, release() frees it."""

    def __init__(self, manager: "JobManager"):
        self._manager = manager
        self._held = True

    def submit(self, image, options) -> JobView:
        if not self._held:
            raise RuntimeError("this reservation was already used or released")
        self._held = False
        return self._manager._submit_reserved(image, options)

    def release(self) -> None:
        if self._held:
            self._held = False
            self._manager._release_reservation()

    def __enter__(self) -> "Reservation":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class JobManager:
    def __init__(
        self,
        engine,
        workers: int = 1,
        queue_size: int = 8,
        ttl_s: float = 600.0,
        max_finished: int = 16,
        max_result_bytes: int = 2 << 30,
        clock=time.monotonic,
    ):
        self._engine = engine
        self._queue_size = queue_size
        self._ttl_s = ttl_s
        self._max_finished = max_finished
        self._max_result_bytes = max_result_bytes
        self._clock = clock
        self._workers = workers
        self._jobs: dict[str, Job] = {}
        self._pending: collections.deque[Job] = collections.deque()
        self._reserved = 0  # places held by submissions whose upload is still being read
        self._run_seconds = 1.0  # moving average of run times, for Retry-After
        self._watchers: dict[str, list[Callable[[], None]]] = {}
        self._lock = threading.Condition()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"colorize-worker-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, image, options) -> JobView:
        return self.reserve().submit(image, options)

    def reserve(self) -> Reservation:
        """Hold a place in the queue, or raise QueueFull (with jobs_ahead and a Retry-After estimate)."""
        with self._lock:
            self._expire_locked()
            waiting = len(self._pending) + self._reserved
            if waiting >= self._queue_size:
                ahead = waiting + self._running_locked()
                raise QueueFull(
                    f"the daemon is busy: {ahead} jobs are ahead and the queue is full; "
                    "try again in a moment",
                    jobs_ahead=ahead,
                    retry_after_s=self._retry_after_locked(),
                )
            self._reserved += 1
            return Reservation(self)

    def jobs_ahead(self) -> int:
        """Jobs a new submission would wait for: running, queued, and those whose upload is being read."""
        with self._lock:
            return self._running_locked() + len(self._pending) + self._reserved

    def retry_after_s(self) -> int:
        with self._lock:
            return self._retry_after_locked()

    def get(self, job_id: str) -> JobView:
        with self._lock:
            self._expire_locked()
            return self._view(self._find(job_id))

    def watch(self, job_id: str, since: int, callback: Callable[[], None]) -> tuple[JobView, Callable[[], None] | None]:
        """The job's view now, and an `unwatch` function if `callback` was registered.

        The callback is registered only when the job is unfinished and its version is not above `since`;
        it is then called (from whatever thread changed the job, lock held: keep it tiny) on every change
        and when the job is dropped.
        """
        with self._lock:
            self._expire_locked()
            job = self._find(job_id)
            view = self._view(job)
            if job.version > since or job.state in FINISHED_STATES:
                return view, None
            self._watchers.setdefault(job_id, []).append(callback)

        def unwatch() -> None:
            with self._lock:
                callbacks = self._watchers.get(job_id, [])
                if callback in callbacks:
                    callbacks.remove(callback)
                if not callbacks:
                    self._watchers.pop(job_id, None)

        return view, unwatch

    def cancel(self, job_id: str) -> JobView:
        """Cancel a queued or running job (a running one stops at the engine's next stage boundary).

        Cancelling a finished job discards its result; either way its memory is released.
        """
        with self._lock:
            job = self._find(job_id)
            job.cancel_event.set()
            if job.state == QUEUED:
                self._pending.remove(job)
                self._queue_moved_locked()
            if job.state not in (FAILED, CANCELLED):
                job.state, job.stage = CANCELLED, CANCELLED
                self._changed_locked(job)
            if job.finished_at is None:
                job.finished_at = self._clock()
            self._release(job)
            return self._view(job)

    def layer(self, job_id: str, index: int):
        with self._lock:
            job = self._find(job_id)
            if job.state != DONE:
                raise JobNotFinished(f"job {job_id} is {job.state}; its result is not available")
            layers = job.result.layers
            if not 0 <= index < len(layers):
                raise BadRequest(f"job {job_id} has {len(layers)} layer(s); index {index} does not exist")
            return layers[index]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(collections.Counter(job.state for job in self._jobs.values()))

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._stopping = True
            for job in self._jobs.values():
                job.cancel_event.set()
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    # -- submission side

    def _submit_reserved(self, image, options) -> JobView:
        with self._lock:
            self._reserved -= 1
            job = Job(id=secrets.token_urlsafe(12), options=options, image=image)
            self._jobs[job.id] = job
            self._pending.append(job)
            self._lock.notify()
            return self._view(job)

    def _release_reservation(self) -> None:
        with self._lock:
            self._reserved -= 1

    # -- worker side

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._stopping:
                    self._lock.wait(timeout=self._ttl_s / 4 or None)
                    self._expire_locked()
                if self._stopping:
                    return
                job = self._pending.popleft()
                job.state, job.stage, job.started_at = RUNNING, "starting", self._clock()
                self._changed_locked(job)
                self._queue_moved_locked()
                image, job.image = job.image, None  # the worker's reference is the only one left
            self._run(job, image)
            del image

    def _run(self, job: Job, image) -> None:
        try:
            result = self._engine.colorize(
                image,
                job.options,
                progress=lambda stage, fraction: self._report(job, stage, fraction),
                cancelled=job.cancel_event.is_set,
            )
        except JobCancelled:
            self._finish(job, CANCELLED)
        except ColorizeError as exc:
            self._finish(job, FAILED, error=exc)
        except Exception as exc:  # a bug or an onnxruntime failure: keep the worker alive, log the traceback
            log.exception("job %s failed", job.id)
            self._finish(job, FAILED, error=ColorizeError(f"internal error while colorizing: {type(exc).__name__}"))
        else:
            self._finish(job, DONE, result=result)

    def _report(self, job: Job, stage: str, fraction: float) -> None:
        with self._lock:
            progress = min(max(float(fraction), 0.0), 1.0)
            if job.state == RUNNING and (stage, progress) != (job.stage, job.progress):
                job.stage, job.progress = stage, progress
                self._changed_locked(job)

    def _finish(self, job: Job, state: str, error: ColorizeError | None = None, result=None) -> None:
        with self._lock:
            job.finished_at = self._clock()
            self._record_run_time(job)
            self._queue_moved_locked()  # one running job fewer ahead of every queued one
            if job.state == CANCELLED or job.cancel_event.is_set():
                if job.state != CANCELLED:
                    job.state = job.stage = CANCELLED  # cancelled while running: drop whatever came back
                    self._changed_locked(job)
                return
            job.state, job.stage, job.error, job.result = state, state, error, result
            job.progress = 1.0 if state == DONE else job.progress
            self._changed_locked(job)
            log.info("job %s %s%s", job.id, state, f": {error.message}" if error else "")
            self._expire_locked()

    def _record_run_time(self, job: Job) -> None:
        if job.started_at is not None:
            self._run_seconds = 0.7 * self._run_seconds + 0.3 * (job.finished_at - job.started_at)

    # -- bookkeeping (lock held)

    def _changed_locked(self, job: Job) -> None:
        job.version += 1
        self._notify_locked(job.id)

    def _notify_locked(self, job_id: str) -> None:
        for callback in list(self._watchers.get(job_id, ())):
            try:
                callback()
            except Exception:  # a waiter that went away must not break the worker
                log.debug("job watcher failed", exc_info=True)

    def _queue_moved_locked(self) -> None:
        """Every queued job's position may have changed."""
        for job in self._pending:
            self._changed_locked(job)

    def _running_locked(self) -> int:
        return sum(1 for job in self._jobs.values() if job.state == RUNNING)

    def _retry_after_locked(self) -> int:
        """Seconds until a place in the queue is likely to be free: about one run time per worker."""
        return min(30, max(1, math.ceil(self._run_seconds / max(1, self._workers))))

    def _queue_position_locked(self, job: Job) -> int:
        if job.state != QUEUED:
            return 0
        return self._running_locked() + self._pending.index(job)

    def _find(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"no job with id {job_id!r} (finished jobs are kept for {self._ttl_s:.0f} s)")
        return job

    @staticmethod
    def _release(job: Job) -> None:
        job.image = None
        job.result = None

    def _expire_locked(self) -> None:
        finished = [job for job in self._jobs.values() if job.state in FINISHED_STATES and job.finished_at is not None]
        finished.sort(key=lambda job: job.finished_at, reverse=True)  # newest first
        now, kept_bytes = self._clock(), 0
        for position, job in enumerate(finished):
            size = _result_bytes(job)
            over_budget = kept_bytes > 0 and kept_bytes + size > self._max_result_bytes
            if position >= self._max_finished or now - job.finished_at > self._ttl_s or over_budget:
                del self._jobs[job.id]
                self._release(job)
                self._notify_locked(job.id)  # a long-poll on it answers "not found" now
            else:
                kept_bytes += size

    def _view(self, job: Job) -> JobView:
        done = job.state == DONE and job.result is not None
        layers = tuple(job.result.layers) if done else ()
        timings = dict(getattr(job.result, "timings", None) or {}) if done else {}
        clipped = int(getattr(job.result, "clipped_pixels", 0)) if done else 0
        model = getattr(job.result, "model", None) if done else None
        details = dict(getattr(job.result, "details", None) or {}) if done else {}
        return JobView(job.id, job.state, job.stage, job.progress, job.error, layers, timings, clipped,
                       job.version, self._queue_position_locked(job), model, details)


def _result_bytes(job: Job) -> int:
    return sum(layer.pixels.nbytes for layer in job.result.layers) if job.result is not None else 0
