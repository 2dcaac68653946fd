"""gimp_colorize_client against the stdlib fake daemon: routes, errors, auto-start. Python 2.7 and 3."""

from __future__ import absolute_import, division, print_function

import json
import os
import signal
import sys
import time
import unittest

from support import FAKES, PLUGIN_COMMON, TOKEN, DaemonTestCase, free_port

import gimp_colorize_client as client_lib
from fake_daemon import NotADaemon


class PathRulesTest(unittest.TestCase):
    def test_config_dir_follows_env_then_platform_rules(self):
        home = {"HOME": "/home/u"}
        self.assertEqual(client_lib.config_dir({"GIMP_COLORIZE_CONFIG_DIR": "/c"}, "linux"), "/c")
        self.assertEqual(client_lib.config_dir(home, "linux"), "/home/u/.config/gimp-colorize")
        self.assertEqual(client_lib.config_dir(dict(home, XDG_CONFIG_HOME="/x"), "linux"), "/x/gimp-colorize")
        self.assertEqual(client_lib.config_dir(home, "darwin"),
                         "/home/u/Library/Application Support/gimp-colorize")
        self.assertEqual(client_lib.config_dir(dict(home, APPDATA="C:/AppData"), "win32"),
                         os.path.join("C:/AppData", "gimp-colorize"))

    def test_state_dir_is_xdg_state_on_linux_and_the_config_dir_elsewhere(self):
        home = {"HOME": "/home/u"}
        self.assertEqual(client_lib.state_dir(home, "linux"), "/home/u/.local/state/gimp-colorize")
        self.assertEqual(client_lib.state_dir(dict(home, XDG_STATE_HOME="/s"), "linux"), "/s/gimp-colorize")
        self.assertEqual(client_lib.state_dir(home, "darwin"), client_lib.config_dir(home, "darwin"))
        self.assertEqual(client_lib.state_dir({"GIMP_COLORIZE_STATE_DIR": "/st"}, "linux"), "/st")


class ConfigTest(DaemonTestCase):
    def test_reads_port_token_and_log_file(self):
        self.write_config(port=5555, state_dir=os.path.join(self.tmp, "st"), python="/venv/python")
        os.environ.pop("GIMP_COLORIZE_STATE_DIR")
        config = client_lib.load_config()
        self.assertEqual((config.host, config.port, config.python), ("127.0.0.1", 5555, "/venv/python"))
        self.assertEqual(config.token_file, os.path.join(self.tmp, "token"))
        self.assertEqual(config.log_file, os.path.join(self.tmp, "st", "daemon.log"))

    def test_missing_config_gives_defaults_without_python(self):
        os.remove(os.path.join(self.tmp, "config.json"))
        config = client_lib.load_config()
        self.assertEqual((config.port, config.python), (client_lib.DEFAULT_PORT, None))
        self.assertEqual(config.log_file, os.path.join(self.tmp, "state", "daemon.log"))

    def test_broken_config_names_the_file(self):
        self.write_file("config.json", "{not json")
        with self.assertRaises(client_lib.ConfigError) as caught:
            client_lib.load_config()
        self.assertIn(os.path.join(self.tmp, "config.json"), caught.exception.message)
        self.write_config(port="http")
        self.assertRaises(client_lib.ConfigError, client_lib.load_config)


class RoutesTest(DaemonTestCase):
    def test_health_models_and_a_whole_job(self):
        client = self.client()
        self.assertEqual(client.token, TOKEN)
        self.assertEqual(client.health()["status"], "ok")
        self.assertEqual(client.models()["models"][0]["name"], "tiny-full")
        job = client.submit(bytes(bytearray([0, 100, 255])), 3, 1, "gray8", {"mode": "full", "model": None})
        seen = []
        status = client_lib.wait_for_job(client, job, progress=lambda status: seen.append(status["progress"]))
        self.assertEqual(status["state"], "done")
        self.assertEqual(seen, sorted(seen))
        self.assertEqual(seen[-1], 1.0)
        data = client.download_layer(job, 0)
        self.assertEqual(bytearray(data), bytearray([40, 0, 0, 140, 100, 60, 255, 255, 215]))
        query = self.requests("POST")[0][2]
        self.assertNotIn("model", query)  # None means "the daemon's default", so it is not sent

    def test_wrong_token_says_restart_or_reinstall_and_names_the_token_file(self):
        self.write_file("token", "stale-token")
        with self.assertRaises(client_lib.AuthError) as caught:
            self.client().models()
        self.assertIn("Restart the daemon", caught.exception.message)
        self.assertIn("reinstall", caught.exception.message)
        self.assertIn(os.path.join(self.tmp, "token"), caught.exception.message)

    def test_missing_model_carries_the_servers_sentence(self):
        with self.assertRaises(client_lib.ModelNotAvailable) as caught:
            self.client().submit(b"\x00", 1, 1, "gray8", {"mode": "instance"})
        self.assertIn("No trained model is installed for mode 'instance'", caught.exception.message)
        self.assertEqual(caught.exception.server_code, "no_model_installed")

    def test_daemon_clauses_become_sentences(self):
        self.daemon.max_pixels = 4
        self.daemon.fail_with = ("model_run_failed", "onnxruntime ran out of memory")
        client = self.client()
        job = client.submit(b"\x00", 1, 1, "gray8", {"mode": "full"})
        failures = []
        for attempt in (lambda: client_lib.wait_for_job(client, job),
                        lambda: client.submit(b"\x00" * 6, 3, 2, "gray8", {"mode": "full"}),
                        lambda: client.submit(b"\x00", 1, 1, "gray8", {"mode": "sepia"}),
                        lambda: client_lib.wait_for_job(client, "gone")):
            try:
                attempt()
            except client_lib.ClientError as exc:
                failures.append(exc.message)
        self.assertEqual(len(failures), 4)
        for message in failures:
            self.assertTrue(message[0].isupper() and message.endswith("."), message)
            self.assertNotIn("..", message)

    def test_image_too_large(self):
        self.daemon.max_pixels = 4
        with self.assertRaises(client_lib.ImageTooLarge) as caught:
            self.client().submit(b"\x00" * 6, 3, 2, "gray8", {"mode": "full"})
        self.assertIn("the limit is 4", caught.exception.message)
        self.assertIn("smaller selection", caught.exception.message)

    def test_failed_job_gives_the_message_and_the_log_file(self):
        self.daemon.fail_with = ("model_run_failed", "onnxruntime ran out of memory")
        client = self.client()
        job = client.submit(b"\x00", 1, 1, "gray8", {"mode": "full"})
        with self.assertRaises(client_lib.JobFailed) as caught:
            client_lib.wait_for_job(client, job)
        self.assertIn("onnxruntime ran out of memory", caught.exception.message)
        self.assertIn(client.config.log_file, caught.exception.message)

    def test_user_cancel_cancels_the_daemon_job(self):
        self.daemon.polls_to_finish = 1000
        client = self.client()
        job = client.submit(b"\x00", 1, 1, "gray8", {"mode": "full"})
        checks = []
        with self.assertRaises(client_lib.JobCancelled):
            client_lib.wait_for_job(client, job, is_cancelled=lambda: checks.append(1) or len(checks) > 2)
        self.assertEqual(self.daemon.jobs[job].state, "cancelled")
        self.assertEqual([r[1] for r in self.requests("DELETE")], ["/v1/jobs/" + job])

    def test_daemon_gone_mid_job_points_at_its_log(self):
        self.daemon.polls_to_finish = 1000
        client = self.client()
        job = client.submit(b"\x00", 1, 1, "gray8", {"mode": "full"})
        self.stop_daemon()
        with self.assertRaises(client_lib.DaemonUnreachable) as caught:
            client_lib.wait_for_job(client, job)
        self.assertIn(client.config.log_file, caught.exception.message)

    def test_forgotten_job_says_run_again(self):
        with self.assertRaises(client_lib.JobFailed) as caught:
            client_lib.wait_for_job(self.client(), "job-from-before-a-restart")
        self.assertIn("Run Colorize Photo again", caught.exception.message)

    def test_timeout_cancels_the_job_and_says_what_to_do(self):
        self.daemon.polls_to_finish = 1000
        client = self.client()
        job = client.submit(b"\x00", 1, 1, "gray8", {"mode": "full"})
        now = [0.0]

        def sleep(seconds):
            now[0] += seconds

        with self.assertRaises(client_lib.JobTimeout) as caught:
            client_lib.wait_for_job(client, job, timeout=2, clock=lambda: now[0], sleep=sleep)
        self.assertIn("job_timeout_s", caught.exception.message)
        self.assertEqual(self.daemon.jobs[job].state, "cancelled")

    def test_busy_daemon_is_retried_after_its_retry_after_showing_the_jobs_ahead(self):
        self.daemon.busy_for, self.daemon.busy_jobs_ahead, self.daemon.retry_after = 2, 3, "2"
        client, waits, slept = self.client(), [], []
        job = client_lib.submit_when_free(client, b"\x00", 1, 1, "gray8", {"mode": "full"}, timeout=60,
                                          on_busy=waits.append, sleep=slept.append)
        self.assertIn(job, self.daemon.jobs)
        self.assertEqual((waits, slept), ([3, 3], [2.0, 2.0]))
        self.assertEqual(len(self.requests("POST")), 3)

    def test_busy_daemon_until_the_job_timeout_gives_up_saying_what_to_do(self):
        self.daemon.busy_for = 10 ** 6
        now = [0.0]

        def sleep(seconds):
            now[0] += seconds

        with self.assertRaises(client_lib.JobTimeout) as caught:
            client_lib.submit_when_free(self.client(), b"\x00", 1, 1, "gray8", {"mode": "full"}, timeout=5,
                                        clock=lambda: now[0], sleep=sleep)
        self.assertIn("stayed busy", caught.exception.message)
        self.assertIn("job_timeout_s", caught.exception.message)
        self.assertEqual(self.daemon.jobs, {})
        self.assertEqual(len(self.requests("POST")), 6)  # at t = 0, 1, ..., 5 (the deadline); t = 6 is too late

    def test_long_polls_a_daemon_that_reports_versions_and_never_sleeps(self):
        self.daemon.long_poll, self.daemon.polls_to_finish = True, 4
        client = self.client()
        job = client.submit(b"\x00", 1, 1, "gray8", {"mode": "full"})

        def no_sleep(seconds):
            raise AssertionError("a long-polling client does not sleep between requests")

        status = client_lib.wait_for_job(client, job, sleep=no_sleep)
        self.assertEqual(status["state"], "done")
        queries = [request[2] for request in self.requests("GET", "/v1/jobs/" + job)]
        self.assertEqual(queries[0], {})
        self.assertEqual([(q["wait"], q["since"]) for q in queries[1:]], [("5", "1"), ("5", "2"), ("5", "3")])

    def test_an_older_daemon_without_versions_is_polled(self):
        self.daemon.polls_to_finish = 3
        client, slept = self.client(), []
        job = client.submit(b"\x00", 1, 1, "gray8", {"mode": "full"})
        client_lib.wait_for_job(client, job, sleep=slept.append)
        self.assertEqual(len(slept), 2)
        self.assertTrue(all(q == {} for q in [r[2] for r in self.requests("GET", "/v1/jobs/" + job)]))

    def test_a_long_poll_never_waits_past_the_job_timeout(self):
        self.daemon.long_poll, self.daemon.stalled = True, True
        client = self.client()
        job = client.submit(b"\x00", 1, 1, "gray8", {"mode": "full"})
        started = time.time()
        with self.assertRaises(client_lib.JobTimeout):
            client_lib.wait_for_job(client, job, timeout=1.0)
        self.assertLess(time.time() - started, 4.0)
        self.assertEqual(self.daemon.jobs[job].state, "cancelled")
        self.assertEqual([r[2].get("wait") for r in self.requests("GET", "/v1/jobs/" + job)][1:], ["1"])

    def test_models_index_lists_the_installed_models_default_first(self):
        state = os.path.join(self.tmp, "state")
        os.makedirs(state)
        self.write_file(os.path.join("state", "models-index.json"), json.dumps({"format": 1, "models": [
            {"name": "b-full", "task": "full", "default": False, "verified": True},
            {"name": "a-full", "task": "full", "default": False, "verified": False},
            {"name": "c-full", "task": "full", "default": True, "verified": True},
            {"name": 7, "task": "full"}, "junk"], "user_models_dir": "/models/here"}))
        index = client_lib.load_models_index(client_lib.load_config())
        self.assertEqual([m["name"] for m in index.models_for("full")], ["c-full", "a-full", "b-full"])
        self.assertEqual((index.default_for("full"), index.has_mode("diverse")), ("c-full", False))
        self.assertEqual(index.user_models_dir, "/models/here")

    def test_a_missing_or_broken_models_index_is_none(self):
        self.assertIsNone(client_lib.load_models_index(client_lib.load_config()))
        os.makedirs(os.path.join(self.tmp, "state"))
        self.write_file(os.path.join("state", "models-index.json"), "{broken")
        self.assertIsNone(client_lib.load_models_index(client_lib.load_config()))

    def test_other_program_on_the_port_is_named_and_not_replaced(self):
        other = NotADaemon().start()
        self.write_config(port=other.port, python="/must/not/be/started")
        try:
            with self.assertRaises(client_lib.ForeignServer) as caught:
                client_lib.connect()
        finally:
            other.stop()
        self.assertIn("127.0.0.1:%d" % other.port, caught.exception.message)
        self.assertIn("not a gimp-colorize daemon", caught.exception.message)


class StartTest(DaemonTestCase):
    def setUp(self):
        DaemonTestCase.setUp(self)
        self.stop_daemon()  # nothing listens on the configured port any more
        self.port = free_port()
        self.log_file = os.path.join(self.tmp, "state", "daemon.log")
        os.remove(os.path.join(self.tmp, "token"))
        self.started = []

    def tearDown(self):
        for pid in self.started:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        DaemonTestCase.tearDown(self)

    def fake_python(self, body):
        """An executable standing in for the venv's python: checks its arguments, then runs `body`."""
        script = "#!/bin/sh\n[ \"$*\" = \"-m gimp_colorize start\" ] || { echo \"bad args: $*\" >&2; exit 9; }\n"
        return self.write_file("fake-python", script + body + "\n", executable=True)

    def test_connection_refused_without_start(self):
        self.write_config(port=self.port)
        with self.assertRaises(client_lib.DaemonUnreachable) as caught:
            client_lib.connect(start=False)
        self.assertIn("127.0.0.1:%d" % self.port, caught.exception.message)

    def test_starts_the_daemon_and_reads_the_token_it_creates(self):
        daemon_script = os.path.join(FAKES, "fake_daemon.py")
        python = self.fake_python("%s %s %d %s >/dev/null 2>&1 &\necho $! > %s/pid\nexit 0" % (
            sys.executable, daemon_script, self.port, os.path.join(self.tmp, "token"), self.tmp))
        self.write_config(port=self.port, python=python, start_timeout_s=20)
        client = client_lib.connect()
        with open(os.path.join(self.tmp, "pid")) as handle:
            self.started.append(int(handle.read()))
        self.assertEqual(client.token, "fake-daemon-token")
        self.assertEqual(client.models()["models"][0]["task"], "full")

    def test_start_failure_names_the_log_and_shows_the_error(self):
        python = self.fake_python("echo 'error: port 48765 is already in use' >&2\nexit 3")
        self.write_config(port=self.port, python=python)
        with self.assertRaises(client_lib.DaemonStartFailed) as caught:
            client_lib.connect()
        self.assertIn("port 48765 is already in use", caught.exception.message)
        self.assertIn("exit code 3", caught.exception.message)
        self.assertIn(self.log_file, caught.exception.message)

    def test_daemon_that_never_answers_times_out_naming_the_log(self):
        self.write_config(port=self.port, python=self.fake_python("exit 0"), start_timeout_s=0.5)
        with self.assertRaises(client_lib.DaemonStartFailed) as caught:
            client_lib.connect()
        self.assertIn("did not answer", caught.exception.message)
        self.assertIn(self.log_file, caught.exception.message)

    def test_the_wait_for_a_starting_daemon_is_reported(self):
        self.write_config(port=self.port, python=self.fake_python("exit 0"), start_timeout_s=0.5)
        calls = []
        self.assertRaises(client_lib.DaemonStartFailed, client_lib.connect, on_start=lambda: calls.append(1))
        self.assertGreater(len(calls), 2)  # once before starting, then while waiting for it to answer

    def test_flatpak_or_snap_gimp_is_told_to_start_the_daemon_itself(self):
        self.write_config(port=self.port, python="/home/u/gimp-colorize/.venv/bin/python")
        for key, sandbox in (("FLATPAK_ID", "Flatpak"), ("SNAP_NAME", "Snap")):
            os.environ[key] = "org.gimp.GIMP"
            try:
                with self.assertRaises(client_lib.DaemonStartFailed) as caught:
                    client_lib.connect()
            finally:
                del os.environ[key]
            self.assertIn("runs as a %s" % sandbox, caught.exception.message)
            self.assertIn("start it yourself with `gimp-colorize start`", caught.exception.message.lower())
            self.assertIn("/home/u/gimp-colorize/.venv/bin/gimp-colorize", caught.exception.message)

    def test_missing_interpreter_says_run_install(self):
        self.write_config(port=self.port, python=os.path.join(self.tmp, "no-such-python"))
        with self.assertRaises(client_lib.DaemonStartFailed) as caught:
            client_lib.connect()
        self.assertIn("install.py", caught.exception.message)
        self.write_config(port=self.port)
        with self.assertRaises(client_lib.DaemonStartFailed) as caught:
            client_lib.connect()
        self.assertIn("install.py", caught.exception.message)


CHILD_PLUGIN = """
import sys, time
sys.path.insert(0, %r)
import gimp_colorize_client as client_lib
client = client_lib.connect(start=False)
job = client.submit(b"\\0", 1, 1, "gray8", {"mode": "full"})
guard = client_lib.guard_job(client, job)
print(job)
sys.stdout.flush()
if sys.argv[1] == "release":
    guard.release()
    sys.exit(0)
time.sleep(120)
"""


class KilledPluginTest(DaemonTestCase):
    """GIMP kills a plug-in whose progress the user cancels: the watcher must cancel the daemon job."""

    def run_child(self, how):
        import subprocess
        script = self.write_file("child_plugin.py", CHILD_PLUGIN % PLUGIN_COMMON)
        self.daemon.polls_to_finish = 10 ** 6
        child = subprocess.Popen([sys.executable, script, how], stdout=subprocess.PIPE)
        job = child.stdout.readline().decode("ascii").strip()
        return child, job

    def wait_for_state(self, job, state, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline and self.daemon.jobs[job].state != state:
            time.sleep(0.05)
        return self.daemon.jobs[job].state

    def test_killed_plugin_gets_its_job_cancelled(self):
        child, job = self.run_child("kill")
        self.assertIn(job, self.daemon.jobs)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        self.assertEqual(self.wait_for_state(job, "cancelled", 15), "cancelled")

    def test_released_guard_leaves_the_job_alone(self):
        child, job = self.run_child("release")
        self.assertEqual(child.wait(), 0)
        child.stdout.close()
        time.sleep(1.0)  # time for a watcher to (wrongly) cancel
        self.assertEqual(self.requests("DELETE"), [])
        self.assertNotEqual(self.daemon.jobs[job].state, "cancelled")
