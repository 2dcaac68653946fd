"""Colorize jobs: a bounded queue served by worker threads, so the HTTP event loop never runs a model.

A job holds its input image until a worker takes it and its result until it expires. Memory is released
as early as possible: the input when the run ends, everything when the job is cancelled, and finished
jobs nobody collects are dropped after `ttl_s`, when more than `max_finished` are kept, or when their
results together exceed `max_result_bytes` (oldest first; the newest result is always kept).
"""

from __future__ import annotations

import collections
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field

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
        self._jobs: dict[str, Job] = {}
        self._pending: collections.deque[Job] = collections.deque()
        self._lock = threading.Condition()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"colorize-worker-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, image, options) -> JobView:
        with self._lock:
            self._expire_locked()
            if len(self._pending) >= self._queue_size:
                raise QueueFull(f"{len(self._pending)} jobs are already waiting; try again when one has finished")
            job = Job(id=secrets.token_urlsafe(12), options=options, image=image)
            self._jobs[job.id] = job
            self._pending.append(job)
            self._lock.notify()
            return self._view(job)

    def get(self, job_id: str) -> JobView:
        with self._lock:
            self._expire_locked()
            return self._view(self._find(job_id))

    def cancel(self, job_id: str) -> JobView:
        """Cancel a queued or running job (a running one stops at the engine's next stage boundary).

        Cancelling a finished job discards its result; either way its memory is released.
        """
        with self._lock:
            job = self._find(job_id)
            job.cancel_event.set()
            if job.state == QUEUED:
                self._pending.remove(job)
            if job.state != FAILED:
                job.state, job.stage = CANCELLED, CANCELLED
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
                job.state, job.stage = RUNNING, "starting"
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
            if job.state == RUNNING:
                job.stage, job.progress = stage, min(max(float(fraction), 0.0), 1.0)

    def _finish(self, job: Job, state: str, error: ColorizeError | None = None, result=None) -> None:
        with self._lock:
            job.finished_at = self._clock()
            if job.state == CANCELLED or job.cancel_event.is_set():
                job.state = job.stage = CANCELLED  # cancelled while running: drop whatever came back
                return
            job.state, job.stage, job.error, job.result = state, state, error, result
            job.progress = 1.0 if state == DONE else job.progress
            log.info("job %s %s%s", job.id, state, f": {error.message}" if error else "")
            self._expire_locked()

    # -- bookkeeping (lock held)

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
            else:
                kept_bytes += size

    @staticmethod
    def _view(job: Job) -> JobView:
        done = job.state == DONE and job.result is not None
        layers = tuple(job.result.layers) if done else ()
        timings = dict(getattr(job.result, "timings", None) or {}) if done else {}
        clipped = int(getattr(job.result, "clipped_pixels", 0)) if done else 0
        return JobView(job.id, job.state, job.stage, job.progress, job.error, layers, timings, clipped)


def _result_bytes(job: Job) -> int:
    return sum(layer.pixels.nbytes for layer in job.result.layers) if job.result is not None else 0
