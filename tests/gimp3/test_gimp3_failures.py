"""Failure paths in a real GIMP 3.0: each one is an error message in GIMP and an untouched image.

Also the happy failure: with no daemon running, the plug-in starts one with config["python"].
"""

import numpy as np
import pytest

from tests.gimp3 import harness, pixels

pytestmark = pytest.mark.gimp


@pytest.fixture(scope="module")
def photos(sandbox):
    folder = sandbox.work / "failures"
    folder.mkdir(exist_ok=True)
    return pixels.write_test_photos(folder)


def colorize_once(sandbox, photos, case_id, mode="full", **run_options):
    case = {"id": case_id, "input": str(photos["gray8"]), "arguments": {"mode": mode, "output": "rgb"}}
    run = sandbox.run_batch("colorize_cases.py", {"out_dir": str(photos["gray8"].parent), "cases": [case]},
                            **run_options)
    assert run.returncode == 0, run.report()
    facts = run.only_facts()
    assert "exception" not in facts, facts["exception"]
    return run, facts


def assert_refused_without_changes(run, facts, *words):
    assert facts["status"] == "execution-error", run.report()
    message = facts["message"].lower()
    assert all(word in message for word in words), "GIMP's error message: %r" % facts["message"]
    assert "traceback" not in message
    assert facts["new_layers"] == [] and facts["after"] == facts["before"], "the image changed"
    assert facts["base_type_after"] == facts["base_type_before"]
    unchanged = np.array_equal(pixels.load_dump(facts["source_before"]), pixels.load_dump(facts["source_after"]))
    assert unchanged, "the source layer's pixels changed"


def test_wrong_token_is_an_error_message_and_no_layer(sandbox, tiny_models, photos):
    token_file = sandbox.config_dir / "token"
    real_token = token_file.read_text()
    daemon = harness.Daemon(sandbox, **tiny_models.daemon_env).start()
    try:
        token_file.write_text("not-the-daemons-token\n")
        run, facts = colorize_once(sandbox, photos, "wrong-token")
    finally:
        token_file.write_text(real_token)
        daemon.stop()
    assert_refused_without_changes(run, facts, "token")


def test_missing_model_is_an_error_message_and_no_layer(sandbox, tiny_models, photos):
    empty = sandbox.home / "no-models"
    empty.mkdir(exist_ok=True)
    daemon = harness.Daemon(sandbox, GIMP_COLORIZE_MODELS_DIR=str(empty), **tiny_models.daemon_env).start()
    try:
        run, facts = colorize_once(sandbox, photos, "no-model")
    finally:
        daemon.stop()
    assert_refused_without_changes(run, facts, "model")


def test_mode_without_an_installed_model_says_what_is_installed_and_where_a_model_goes(sandbox, tiny_models, photos):
    daemon = harness.Daemon(sandbox, **tiny_models.daemon_env).start()
    try:
        run, facts = colorize_once(sandbox, photos, "no-instance-model", mode="instance")
    finally:
        daemon.stop()
    assert_refused_without_changes(run, facts, "instance", "model")
    message = facts["message"]
    assert "Installed: \"Whole photo\", \"Several variants\"." in message, message
    assert str(tiny_models.user_dir) in message and "install.py" not in message, message
    assert message[0].isupper() and message.endswith("."), message


def test_image_over_the_daemons_size_limit_is_an_error_message_and_no_layer(sandbox, tiny_models, photos):
    with harness.edited_config(sandbox, max_pixels=100_000):  # the photos have 262 144 pixels
        daemon = harness.Daemon(sandbox, **tiny_models.daemon_env).start()
        try:
            run, facts = colorize_once(sandbox, photos, "too-large")
        finally:
            daemon.stop()
    assert_refused_without_changes(run, facts, "megapixels")


def test_daemon_that_cannot_start_is_an_error_message_and_no_layer(sandbox, photos):
    assert harness.health("http://127.0.0.1:%d" % sandbox.port) is None
    with harness.edited_config(sandbox, python="/nonexistent/bin/python3"):
        run, facts = colorize_once(sandbox, photos, "cannot-start")
    assert_refused_without_changes(run, facts, "daemon", "/nonexistent/bin/python3")


def test_plugin_starts_the_daemon_when_none_is_running(sandbox, tiny_models, photos):
    url = "http://127.0.0.1:%d" % sandbox.port
    assert harness.health(url) is None, "a daemon is already listening on the sandbox port"
    try:
        # host_visible: config["python"] (the sandbox's gc-python wrapper) reaches the host's Python via /host
        run, facts = colorize_once(sandbox, photos, "auto-start", env=tiny_models.daemon_env, host_visible=True)
        started = harness.health(url)
    finally:
        harness.stop_daemon_by_pid_file(sandbox)
    assert facts["status"] == "success", facts["message"] + "\n" + run.report()
    assert len(facts["new_layers"]) == 1
    assert started is not None and started["status"] == "ok"
    assert harness.health(url) is None, "gimp-colorize stop did not stop the auto-started daemon"
