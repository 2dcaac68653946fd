"""Drive an ASGI app directly, one body chunk at a time, to see how much of an upload the server reads.

Starlette's TestClient reads a streamed request body whole before the app runs; these tests need to
know whether the server stopped reading early (a 503 before the body, a 413 as soon as the limit is
passed), and to make an upload stall or run concurrently with others in one event loop.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from urllib.parse import urlencode

HOST = "127.0.0.1:48765"  # what the daemon's default settings answer to
STALL_S = 10.0  # a stalled upload goes on after this long (a server without a body timeout then answers late)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    consumed: int  # body chunks the app asked for
    read_bytes: int = 0

    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def error(self) -> dict:
        return self.json()["error"]


@dataclass
class Upload:
    chunks: list[bytes] = field(default_factory=list)
    stall_after: int | None = None  # after this many chunks the client sends nothing more (but stays connected)
    release: asyncio.Event | None = None  # when set, a stalled upload goes on


async def request(app, method: str, path: str, *, query: dict | None = None, headers: dict | None = None,
                  upload: Upload | None = None, host: str = HOST) -> Answer:
    upload = upload or Upload()
    raw_headers = [(b"host", host.encode())] if host is not None else []
    raw_headers += [(k.lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": urlencode(query or {}).encode(),
        "headers": raw_headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 48765),
    }
    state = {"consumed": 0, "read": 0, "sent_all": False}
    done = asyncio.Event()
    started: dict = {}
    body = bytearray()

    async def receive():
        if state["sent_all"]:
            await done.wait()
            return {"type": "http.disconnect"}
        if upload.stall_after is not None and state["consumed"] >= upload.stall_after:
            if upload.release is None:
                await asyncio.sleep(STALL_S)  # the server's timeout cancels this
            else:
                await upload.release.wait()
                upload.stall_after = None
        index = state["consumed"]
        state["consumed"] += 1
        chunk = upload.chunks[index] if index < len(upload.chunks) else b""
        state["read"] += len(chunk)
        more = index + 1 < len(upload.chunks)
        state["sent_all"] = not more
        return {"type": "http.request", "body": chunk, "more_body": more}

    async def send(message):
        if message["type"] == "http.response.start":
            started["status"] = message["status"]
            started["headers"] = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    await app(scope, receive, send)
    return Answer(started["status"], started["headers"], bytes(body), state["consumed"], state["read"])


def run(coroutine):
    return asyncio.run(coroutine)
