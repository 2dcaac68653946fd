"""A stdlib HTTP server speaking the daemon's API v1 (docs/DESIGN.md), for the plug-in client's tests.

Runs on Python 2.7 and 3.x, so the same fake serves the tests run under a real Python 2.7, and it runs
as a process of its own (`fake_daemon.py PORT TOKEN_FILE`) for the real-GIMP tests of instance mode.
Behaviour is scripted through attributes: token, models, max_pixels, polls_to_finish, fail_with,
stages, busy_for / busy_jobs_ahead / retry_after (a full queue), queued_polls (a job waits its turn),
long_poll (status "version" and ?wait=&since=, as newer daemons do), stalled (a job that never moves),
groups (False: an older daemon whose diverse layers have no group) and refuse_guidance (a model that
takes no hints).

Its "colorizing" is deterministic: 8-bit gray g becomes (g + 40, g, g - 40) clipped, where an uploaded
hint image is opaque its colour instead, and a diverse sample's red is moved by its seed; other depths
copy the gray into all three channels. Like the real daemon it keeps uploaded inputs (POST /v1/inputs),
refuses hints of the wrong size and gray references, puts diverse samples into a group named after the
model with only the first visible, and in instance mode makes one object per 8-connected region of an
uploaded selection (plus one found "automatically" for boxes=auto or both), with instance layers in the
group "Instances", each with a mask. Every request is recorded in `requests`.
"""

from __future__ import absolute_import, division, print_function

import json
import random
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
INSTANCE_STAGES = ("detecting", "instances", "fusing")
GRAY_REFERENCE = "the reference photo has no colour (it is gray); choose a colour photo as the reference."


def parse_format(name):
    """'graya16' -> (colour channels, alpha, bytes per sample, depth)."""
    for prefix, channels, alpha in (("graya", 1, True), ("gray", 1, False), ("rgba", 3, True), ("rgb", 3, False)):
        depth = name[len(prefix):]
        if name.startswith(prefix) and depth in SIZES:
            return channels, alpha, SIZES[depth], depth
    return None


def fake_colorize(data, fmt, width, height, hints=None, red_shift=0):
    """Gray or RGB input without alpha (the plug-in strips alpha); RGB counts by its first channel."""
    channels, alpha, size, depth = parse_format(fmt)
    if channels == 3:
        data = _first_channel(data, size)
    out = bytearray(width * height * 3 * size)
    if size == 1:
        data = bytes(data)
        warm = bytearray(min(value + red_shift, 255) for value in _WARM)
        out[0::3] = data.translate(bytes(warm))
        out[1::3] = data
        out[2::3] = data.translate(bytes(_COOL))
        if hints is not None:
            _paint_hints(out, bytearray(hints))
        return bytes(out)
    for channel in range(3):
        for byte in range(size):
            out[channel * size + byte::3 * size] = data[byte::size]
    return bytes(out)


def _paint_hints(out, hints):
    for pixel in range(len(out) // 3):
        if hints[pixel * 4 + 3]:
            out[pixel * 3:pixel * 3 + 3] = hints[pixel * 4:pixel * 4 + 3]


def _first_channel(data, size):
    out = bytearray(len(data) // 3)
    for byte in range(size):
        out[byte::size] = data[byte::3 * size]
    return bytes(out)


def regions(mask, width, height):
    """[(x, y, w, h)] of the 8-connected regions of a gray8 mask's pixels >= 128, largest first."""
    selected = bytearray(1 if value >= 128 else 0 for value in bytearray(mask))
    found = []
    for start in range(width * height):
        if selected[start] != 1:
            continue
        selected[start] = 2
        stack, xs, ys, count = [start], [], [], 0
        while stack:
            pixel = stack.pop()
            x, y = pixel % width, pixel // width
            xs.append(x)
            ys.append(y)
            count += 1
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    nx, ny = x + dx, y + dy
                    if 0 <= nx < width and 0 <= ny < height and selected[ny * width + nx] == 1:
                        selected[ny * width + nx] = 2
                        stack.append(ny * width + nx)
        found.append((count, (min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1)))
    found.sort(key=lambda item: -item[0])
    return [box for _, box in found]


def box_mask(box, width, height):
    x, y, w, h = box
    out = bytearray(width * height)
    for row in range(y, y + h):
        out[row * width + x:row * width + x + w] = b"\xff" * w
    return bytes(out)


class Job(object):
    def __init__(self, job_id, pixels, fmt, width, height, query, server):
        self.id = job_id
        self.state = "queued"
        self.polls = 0
        self.fmt, self.width, self.height = fmt, width, height
        self.query = query
        self.mode = query.get("mode", "full")
        self.samples = int(query.get("samples", 1)) if self.mode == "diverse" else 1
        self.pixels = pixels
        self.hints = server.inputs.get(query.get("hints"), (None,) * 4)[3]
        self.error = None
        self.version = 0
        self.model = server.models.get(self.mode)
        self.details = {}
        self.plans = self._plan(server)

    def _plan(self, server):
        """[(layer json, red shift, mask or None)] in the order the daemon lists them."""
        if self.mode == "diverse":
            base = int(self.query["seed"]) if "seed" in self.query else random.randint(0, 2 ** 31 - 1)
            seeds = [base + number for number in range(self.samples)]
            self.details = {"seeds": seeds}
            group = "Colorize: diverse (%s)" % self.model if server.groups else None
            return [(self._layer(number, "sample %d (seed %d)" % (number + 1, seed), group, number == 0,
                                 {"seed": seed, "sample": number + 1}), seed % 7 * 9, None)
                    for number, seed in enumerate(seeds)]
        plans = [(self._layer(0, "Colorized (%s)" % self.model, None, True, {}), 0, None)]
        if self.mode == "instance":
            boxes = self._instances(server)
            self.details = {"instances": [{"box": list(box), "source": source} for box, source in boxes]}
            plans[0][0]["details"] = {"instances": len(boxes)}
            if self.query.get("instance_layers") == "true":
                for number, (box, source) in enumerate(boxes, 1):
                    layer = self._layer(number, "Instance %d: %s" % (number, source), "Instances", True,
                                        {"box": list(box), "source": source})
                    plans.append((layer, 0, box_mask(box, self.width, self.height)))
        return plans

    def _instances(self, server):
        boxes = []
        selection = server.inputs.get(self.query.get("selection"))
        if selection is not None and self.query.get("boxes") in ("selection", "both"):
            boxes += [(box, "selection") for box in regions(selection[3], self.width, self.height)]
        if self.query.get("boxes", "auto") in ("auto", "both"):
            boxes.append(((0, 0, max(1, self.width // 2), max(1, self.height // 2)), "detector"))
        return boxes

    def _layer(self, index, name, group, visible, details):
        return {"index": index, "name": name, "width": self.width, "height": self.height,
                "format": "rgb" + parse_format(self.fmt)[3], "group": group, "visible": visible,
                "mask": False, "details": details}

    def layers(self):
        listed = []
        for layer, _, mask in self.plans:
            listed.append(dict(layer, mask=mask is not None))
        return listed


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
        self.groups = True
        self.refuse_guidance = None  # a message: jobs with hints or a reference get 400 bad_request with it
        self.jobs = {}
        self.inputs = {}  # id -> (format, width, height, bytes)
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
        if parts[:2] == ["v1", "inputs"] and len(parts) == 2 and method == "POST":
            return self._input(query, body)
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
        if len(parts) in (5, 6) and parts[3] == "layers":
            return self._layer(job, int(parts[4]), mask=len(parts) == 6 and parts[5] == "mask")
        return self._error(404, "not_found", "no such route")

    def _input(self, query, body):
        width, height, fmt = int(query["width"]), int(query["height"]), query["format"]
        parsed = parse_format(fmt)
        if parsed is None or len(body) != width * height * (parsed[0] + parsed[1]) * parsed[2]:
            return self._error(400, "invalid_image", "wrong raw length for %s" % fmt)
        with self.server.lock:
            input_id = "input%d" % (len(self.server.inputs) + 1)
            self.server.inputs[input_id] = (fmt, width, height, body)
        if hasattr(self.server.requests, "keep_input"):
            self.server.requests.keep_input(input_id, fmt, width, height, body)
        return self._reply(201, {"id": input_id, "kind": "image", "width": width, "height": height, "points": None,
                                 "expires_in_s": 600})

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
        if self.server.refuse_guidance and ("hints" in query or "reference" in query):
            return self._error(400, "bad_request", self.server.refuse_guidance)
        refused = self._check_inputs(query, width, height)
        if refused:
            return self._error(*refused)
        with self.server.lock:
            job_id = "job%d" % (len(self.server.jobs) + 1)
            self.server.jobs[job_id] = Job(job_id, body, fmt, width, height, query, self.server)
        return self._reply(202, {"id": job_id, "state": "queued"})

    def _check_inputs(self, query, width, height):
        """(status, code, message) for inputs the real daemon would refuse before queueing the job, or None."""
        for name, formats in (("hints", ("rgba8", "rgba16", "rgbaf32")), ("selection", ("gray8", "gray16")),
                              ("reference", ("rgb8", "rgba8"))):
            if name not in query:
                continue
            stored = self.server.inputs.get(query[name])
            if stored is None:
                return 404, "input_not_found", "no uploaded input %r for %s; upload it again." % (query[name], name)
            if stored[0] not in formats:
                return 400, "bad_request", "the %s input has the wrong kind of pixels (%s)" % (name, stored[0])
            if name != "reference" and stored[1:3] != (width, height):
                return 400, "bad_request", "the %s are %d x %d pixels; they must have the image's size, %d x %d." % (
                    name, stored[1], stored[2], width, height)
        return None

    def _status(self, job, query):
        server = self.server
        if server.long_poll and "since" in query and int(query["since"]) >= job.version and server.stalled:
            time.sleep(min(float(query.get("wait", 1)), 30.0))  # nothing happens to a stalled job
        elif not (server.stalled and job.state == "running"):
            self._advance(job)
        stages = INSTANCE_STAGES if job.mode == "instance" else server.stages
        progress = 1.0 if job.state == "done" else min(job.polls / float(server.polls_to_finish), 0.99)
        answer = {"id": job.id, "state": job.state, "progress": progress, "error": job.error,
                  "stage": "queued" if job.state == "queued" else stages[(job.polls - 1) % len(stages)],
                  "model": job.model, "layers": job.layers() if job.state == "done" else [],
                  "details": job.details if job.state == "done" or job.polls > 1 else {}}
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
            failure = self.server.fail_with or self._reference_failure(job)
            job.state = "failed" if failure else "done"
            if failure:
                job.error = {"error": {"code": failure[0], "message": failure[1]}}

    def _reference_failure(self, job):
        stored = self.server.inputs.get(job.query.get("reference"))
        if stored is None:
            return None
        fmt, width, height, data = stored
        stride = 4 if fmt == "rgba8" else 3
        data = bytearray(data)
        gray = all(data[i] == data[i + 1] == data[i + 2] for i in range(0, len(data), stride))
        return ("bad_request", GRAY_REFERENCE) if gray else None

    def _layer(self, job, index, mask=False):
        if job.state != "done" or index >= len(job.plans):
            return self._error(409, "job_not_finished", "the job has not finished")
        layer, red_shift, layer_mask = job.plans[index]
        if mask:
            if layer_mask is None:
                return self._error(404, "job_not_found", "layer %d of job %s has no mask." % (index, job.id))
            return self._send(200, layer_mask, "application/octet-stream")
        data = fake_colorize(job.pixels, job.fmt, job.width, job.height, job.hints, red_shift)
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
    """`fake_daemon.py PORT TOKEN_FILE [MODE=MODEL ...] [--log FILE]`: serve until killed, creating the token
    file like the real daemon; with --log, every request goes to FILE as a JSON line (the real-GIMP tests read
    what the plug-in sent)."""
    import os
    port, token_file = int(argv[1]), argv[2]
    if not os.path.exists(token_file):
        with open(token_file, "w") as handle:
            handle.write("fake-daemon-token\n")
    with open(token_file) as handle:
        token = handle.read().strip()
    server = FakeDaemon(token=token, port=port)
    rest = argv[3:]
    log = None
    if "--log" in rest:
        log = rest[rest.index("--log") + 1]
        rest = rest[:rest.index("--log")]
    for pair in rest:
        mode, model = pair.split("=", 1)
        server.models[mode] = model
    if log is not None:
        server.requests = _LoggedRequests(log, server)
    server.serve_forever()


class _LoggedRequests(list):
    """`requests` that also writes each request, and each uploaded input's shape, to a JSON-lines file."""

    def __init__(self, path, server):
        list.__init__(self)
        self.path, self.server = path, server

    def append(self, request):
        list.append(self, request)
        self._write({"method": request[0], "path": request[1], "query": request[2]})

    def keep_input(self, input_id, fmt, width, height, body):
        raw = "%s.%s.raw" % (self.path, input_id)
        with open(raw, "wb") as handle:
            handle.write(body)
        self._write({"input": input_id, "format": fmt, "width": width, "height": height, "file": raw})

    def _write(self, entry):
        with open(self.path, "a") as handle:
            handle.write(json.dumps(entry) + "\n")


if __name__ == "__main__":
    import sys
    main(sys.argv)
