"""Progress, cancellation and per-stage timings of one colorization.

Each mode names its stages and where each starts in the overall 0..1 progress (a plan); the last
stage is always "upsample_recombine" (shared by every mode) and then "done".
"""

from __future__ import annotations

import time
from typing import Callable

from .errors import JobCancelled

Progress = Callable[[str, float], None]
Cancelled = Callable[[], bool]

# share of the overall progress at which each stage starts
FULL_PLAN = {"preprocess": 0.0, "inference": 0.1, "upsample_recombine": 0.5, "done": 1.0}


class Stages:
    def __init__(self, progress: Progress | None, cancelled: Cancelled | None, plan: dict[str, float] = FULL_PLAN):
        self._progress = progress
        self._cancelled = cancelled
        self._plan = plan
        self.timings: dict[str, float] = {}
        self._stage: str | None = None
        self._started = time.perf_counter()

    def enter(self, stage: str) -> None:
        now = time.perf_counter()
        if self._stage is not None:
            self.timings[self._stage] = self.timings.get(self._stage, 0.0) + now - self._started
        self._stage, self._started = stage, now
        if stage != "done":
            self.check_cancelled()
        self._report(stage, self._plan[stage])

    def check_cancelled(self) -> None:
        if self._cancelled is not None and self._cancelled():
            raise JobCancelled("the job was cancelled")

    def within(self, fraction: float) -> None:
        """Progress inside the current stage (0..1 of its share); also a cancel point."""
        self.check_cancelled()
        begin, end = self._span(self._stage)
        self._report(self._stage, begin + (end - begin) * min(max(fraction, 0.0), 1.0))

    def chunk_reporter(self, number: int, count: int):
        """Progress within upsample_recombine for layer `number` of `count`; also a cancel point per chunk."""
        begin, end = self._span("upsample_recombine")
        share = (end - begin) / count

        def report(fraction: float) -> None:
            self.check_cancelled()
            self._report("upsample_recombine", begin + share * (number - 1 + fraction))

        return report

    def _span(self, stage: str) -> tuple[float, float]:
        begin = self._plan[stage]
        later = [start for start in self._plan.values() if start > begin]
        return begin, min(later) if later else 1.0

    def _report(self, stage: str, fraction: float) -> None:
        if self._progress is not None:
            self._progress(stage, min(1.0, fraction))
