"""Shared set-up for the plug-in test cases, which run under pytest (Python 3) and under a real
Python 2.7 (run_py27.py inside a Debian bullseye root): stdlib only, no f-strings.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import shutil
import socket
import stat
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FAKES = os.path.join(REPO, "tests", "fakes")
PLUGIN_COMMON = os.path.join(REPO, "plugin", "common")
PLUGIN_GIMP2 = os.path.join(REPO, "plugin", "gimp2")
# Not plugin/gimp2: its gimp_colorize.py would shadow the backend package of the same name (cases_gimp2
# loads the plug-in with a temporary sys.path instead).
for _path in (PLUGIN_COMMON, FAKES):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import gimp_colorize_client as client_lib  # noqa: E402
from fake_daemon import FakeDaemon  # noqa: E402

TOKEN = "secret-token"
ENV_KEYS = ("GIMP_COLORIZE_CONFIG_DIR", "GIMP_COLORIZE_STATE_DIR", "GIMP_COLORIZE_TIMINGS", "GIMP_COLORIZE_MODELS_DIR",
            "FLATPAK_ID", "SNAP_NAME", "SNAP")


def free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class DaemonTestCase(unittest.TestCase):
    """A fake daemon on a free port and a config dir pointing at it (config.json + token)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gc-plugin-")
        self.saved_env = dict((k, os.environ.get(k)) for k in ENV_KEYS)
        os.environ["GIMP_COLORIZE_CONFIG_DIR"] = self.tmp
        os.environ["GIMP_COLORIZE_STATE_DIR"] = os.path.join(self.tmp, "state")
        for key in ENV_KEYS[2:]:
            os.environ.pop(key, None)
        self.daemon = FakeDaemon(token=TOKEN).start()
        self.write_config(port=self.daemon.port)
        self.write_file("token", TOKEN + "\n")

    def stop_daemon(self):
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

    def tearDown(self):
        self.stop_daemon()
        for key, value in self.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write_file(self, name, text, executable=False):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as handle:
            handle.write(text)
        if executable:
            os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
        return path

    def write_config(self, **values):
        values.setdefault("token_file", os.path.join(self.tmp, "token"))
        self.write_file("config.json", json.dumps(values))

    def client(self):
        return client_lib.connect(start=False)

    def requests(self, method=None, prefix="/v1/jobs"):
        return [r for r in self.daemon.requests if r[1].startswith(prefix) and (method is None or r[0] == method)]
