"""Uploaded job inputs (POST /v1/inputs): hint images, reference photos, selection masks, colour points.

A job names them by id (`hints=`, `reference=`, `selection=`, `points=`, or `image=` to reuse an uploaded
source), so each request body stays one bounded stream and a client can reuse a reference or a source
across runs with different hints. Inputs are kept `ttl_s` seconds after their last use, at most
`max_items` of them and `max_bytes` together (the oldest are dropped first; the newest always stays).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

import numpy as np

from .errors import JobNotFound


class InputNotFound(JobNotFound):
    code = "input_not_found"


@dataclass
class StoredInput:
    id: str
    value: object          # np.ndarray (an image) or a tuple of HintPoint
    nbytes: int
    last_used: float

    @property
    def kind(self) -> str:
        return "image" if isinstance(self.value, np.ndarray) else "points"


class InputStore:
    def __init__(self, ttl_s: float = 600.0, max_items: int = 32, max_bytes: int = 1 << 30, clock=time.monotonic):
        self.ttl_s = ttl_s
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._clock = clock
        self._items: dict[str, StoredInput] = {}
        self._lock = threading.Lock()

    def add(self, value, nbytes: int) -> StoredInput:
        with self._lock:
            item = StoredInput(secrets.token_urlsafe(12), value, nbytes, self._clock())
            self._items[item.id] = item
            self._expire_locked()
            return item

    def get(self, input_id: str, what: str):
        """The stored value; InputNotFound (404) says that uploads expire and what to do."""
        with self._lock:
            self._expire_locked()
            item = self._items.get(input_id)
            if item is None:
                raise InputNotFound(f"no uploaded input {input_id!r} for {what} (inputs are kept for "
                                    f"{self.ttl_s:.0f} s after their last use); upload it again with POST /v1/inputs.")
            item.last_used = self._clock()
            return item.value

    def count(self) -> int:
        with self._lock:
            return len(self._items)

    def _expire_locked(self) -> None:
        now, kept_bytes = self._clock(), 0
        newest_first = sorted(self._items.values(), key=lambda item: item.last_used, reverse=True)
        for position, item in enumerate(newest_first):
            too_many = position >= self.max_items
            too_big = kept_bytes > 0 and kept_bytes + item.nbytes > self.max_bytes
            if too_many or too_big or now - item.last_used > self.ttl_s:
                del self._items[item.id]
            else:
                kept_bytes += item.nbytes
