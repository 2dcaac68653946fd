"""A stdlib HTTP server speaking the daemon's API v1 (docs/DESIGN.md), for the plug-in client's tests.

Runs on Python 2.7 and 3.x, so the same fake serves the tests run under a real Python 2.7.
Behaviour is scripted through attributes: token, models, max_pixels, polls_to_finish, fail_with,
stages, busy_for / busy_jobs_ahead / retry_after (a full queue), queued_polls (a job waits its turn),
long_poll (status "version" and ?wait=&since=, as newer daemons do) and stalled (a job that never moves).
Its "colorizing" is deterministic: 8-bit gray g becomes (g + 40, g, g - 40) clipped; other depths
copy the gray into all three channels. Every request is recorded in `requests`.
"""

from __future__ import absolute_import, division, print_function

import json
import threading
import time

try:
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from socketserver import ThreadingMixIn
    from urllib.parse import parse_qs, urlparse
except ImportError:  # Python 2.7
    from BaseHTTPServer import BaseHTTPRequestHandler, HTTPServer
    from SocketServer import ThreadingMixIn
    from urlparse import parse_qs, urlparse

SIZES = {"8": 1, "16": 2, "f32": 4}
_WARM = bytearray(min(g + 40, 255) for g in range(256))
_COOL = bytearray(max(g - 40, 0) for g in range(256))


def parse_format(name):
    """'graya16' -> (colour channels, alpha, bytes per sample, depth)."""
    for prefix, channels, alpha in (("graya", 1, True), ("gray", 1, False), ("rgba", 3, True), ("rgb", 3, False)):
        depth = name[len(prefix):]
        if name.startswith(prefix) and depth in SIZES:
            return channels, alpha, SIZES[depth], depth
    return None


def fake_colorize(data, fmt, width, height):
    """Gray or RGB input without alpha (the plug-in strips alpha); RGB counts by its first channel."""
    channels, alpha, size, depth = parse_format(fmt)
    if channels == 3:
        data = _first_channel(data, size)
    out = bytearray(width * height * 3 * size)
    if size == 1:
        data = bytes(data)
        out[0::3] = data.translate(bytes(_WARM))
        out[1::3] = data
        out[2::3] = data.translate(bytes(_COOL))
        return bytes(out)
    for channel in range(3):
        for byte in range(size):
            out[channel * size + byte::3 * size] = data[byte::size]
    return bytes(out)


def _first_channel(data, size):
    out = bytearray(len(data) // 3)
    for byte in range(size):
        out[byte::size] = data[byte::3 * size]
    return bytes(out)


class Job(object):
    def __init__(self, job_id, pixels, fmt, width, height, samples):
        self.id = job_id
        self.state = "queued"
        self.polls = 0
        self.fmt, self.width, self.height, self.samples = fmt, width, height, samples
        self.pixels = pixels
        self.error = None
        self.version = 0

    def layers(self):
        depth = parse_format(self.fmt)[3]
        return [{"index": i, "name": "sample %d" % (i + 1), "width": self.width, "height": self.height,
                 "format": "rgb" + depth} for i in range(self.samples)]


class FakeDaemon(ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, token="secret-token", port=0):
        HTTPServer.__init__(self, ("127.0.0.1", port), _Handler)
        self.token = token
        self.models = {"full": "tiny-full"}  # mode -> default model
        self.max_pixels = 10 ** 8
        self.polls_to_finish = 3
        self.fail_with = None  # a (code, message) envelope for failed jobs
        self.stages = ("preprocess", "inference", "upsample_recombine")  # one per poll, cycling
        self.busy_for = 0  # answer this many submissions with 503 busy
        self.busy_jobs_ahead = 8
        self.retry_after = "1"  # the Retry-After header of a busy answer
        self.queued_polls = 0  # a new job stays queued for this many polls, its queue position counting down
        self.long_poll = False
        self.stalled = False  # running jobs never change (long polls then wait their full time)
        self.jobs = {}
        self.requests = []
        self.lock = threading.Lock()
        self.thread = None

    @property
    def port(self):
        return self.server_address[1]

    def start(self):
        self.thread = threading.Thread(target=self.serve_forever, args=(0.02,))
        self.thread.daemon = True
        self.thread.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        url = urlparse(self.path)
        query = dict((k, v[0]) for k, v in parse_qs(url.query).items())
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append((method, url.path, query))
        parts = url.path.strip("/").split("/")
        if parts[:2] == ["v1", "health"]:
            return self._reply(200, {"status": "ok", "version": "fake", "providers": ["CPUExecutionProvider"],
                                     "models_loaded": [], "models_available": len(self.server.models)})
        if self.headers.get("Authorization") != "Bearer %s" % self.server.token:
            return self._error(401, "unauthorized", "missing or wrong token")
        if parts[:2] == ["v1", "models"]:
            return self._reply(200, {"models": [{"name": n, "task": m} for m, n in self.server.models.items()],
                                     "rejected": []})
        if parts[:2] == ["v1", "jobs"] and len(parts) == 2 and method == "POST":
            return self._submit(query, body)
        job = self.server.jobs.get(parts[2]) if len(parts) > 2 else None
        if job is None:
            return self._error(404, "job_not_found", "no such job")
        if len(parts) == 3 and method == "GET":
            return self._status(job, query)
        if len(parts) == 3 and method == "DELETE":
            job.state = "cancelled"
            return self._reply(200, {"id": job.id, "state": "cancelled"})
        if len(parts) == 5 and parts[3] == "layers":
            return self._layer(job, int(parts[4]))
        return self._error(404, "not_found", "no such route")

    def _submit(self, query, body):
        if self.server.busy_for > 0:
            self.server.busy_for -= 1
            error = {"code": "busy", "message": "the daemon is busy: %d jobs are waiting" % self.server.busy_jobs_ahead,
                     "jobs_ahead": self.server.busy_jobs_ahead}
            return self._reply(503, {"error": error}, {"Retry-After": self.server.retry_after})
        mode = query.get("mode", "full")
        if mode not in self.server.models:
            return self._error(409, "no_model_installed", "No trained model is installed for mode '%s'." % mode)
        width, height, fmt = int(query["width"]), int(query["height"]), query["format"]
        if width * height > self.server.max_pixels:
            return self._error(413, "image_too_large", "The image has %d pixels; the limit is %d."
                               % (width * height, self.server.max_pixels))
        parsed = parse_format(fmt)
        if parsed is not None and parsed[1]:
            return self._error(400, "invalid_image", "fake daemon: the plug-in should have stripped the alpha")
        if parsed is None or len(body) != width * height * (parsed[0] + parsed[1]) * parsed[2]:
            return self._error(400, "invalid_image", "wrong raw length for %s" % fmt)
        with self.server.lock:
            job_id = "job%d" % (len(self.server.jobs) + 1)
            self.server.jobs[job_id] = Job(job_id, body, fmt, width, height, int(query.get("samples", 1)))
        return self._reply(202, {"id": job_id, "state": "queued"})

    def _status(self, job, query):
        server = self.server
        if server.long_poll and "since" in query and int(query["since"]) >= job.version and server.stalled:
            time.sleep(min(float(query.get("wait", 1)), 30.0))  # nothing happens to a stalled job
        elif not (server.stalled and job.state == "running"):
            self._advance(job)
        progress = 1.0 if job.state == "done" else min(job.polls / float(server.polls_to_finish), 0.99)
        answer = {"id": job.id, "state": job.state, "progress": progress, "error": job.error,
                  "stage": "queued" if job.state == "queued" else server.stages[(job.polls - 1) % len(server.stages)],
                  "model": server.models.get("full"), "layers": job.layers() if job.state == "done" else []}
        if job.state == "queued":
            answer["queue_position"] = server.queued_polls - job.polls
        if server.long_poll:
            answer["version"] = job.version
        return self._reply(200, answer)

    def _advance(self, job):
        if job.state not in ("queued", "running"):
            return
        job.polls += 1
        job.version += 1
        job.state = "queued" if job.polls <= self.server.queued_polls else "running"
        if job.polls >= self.server.polls_to_finish + self.server.queued_polls:
            job.state = "failed" if self.server.fail_with else "done"
            if self.server.fail_with:
                job.error = {"error": {"code": self.server.fail_with[0], "message": self.server.fail_with[1]}}

    def _layer(self, job, index):
        if job.state != "done" or index >= job.samples:
            return self._error(409, "job_not_finished", "the job has not finished")
        data = fake_colorize(job.pixels, job.fmt, job.width, job.height)
        self._send(200, data, "application/octet-stream")

    def _error(self, status, code, message):
        self._reply(status, {"error": {"code": code, "message": message}})

    def _reply(self, status, obj, headers=None):
        self._send(status, json.dumps(obj).encode("utf-8"), "application/json", headers)

    def _send(self, status, data, content_type, headers=None):
        self.send_response(status)
        for key, value in sorted((headers or {}).items()):
            self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _NotFoundHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        body = b"<html><body>Not Found</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class NotADaemon(FakeDaemon):
    """Some other web server on the configured port."""

    def __init__(self):
        HTTPServer.__init__(self, ("127.0.0.1", 0), _NotFoundHandler)


def main(argv):
    """`fake_daemon.py PORT TOKEN_FILE`: serve until killed, creating the token file like the real daemon."""
    import os
    port, token_file = int(argv[1]), argv[2]
    if not os.path.exists(token_file):
        with open(token_file, "w") as handle:
            handle.write("fake-daemon-token\n")
    with open(token_file) as handle:
        token = handle.read().strip()
    FakeDaemon(token=token, port=port).serve_forever()


if __name__ == "__main__":
    import sys
    main(sys.argv)
