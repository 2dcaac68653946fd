"""A real daemon loads its default full model when it starts (config.json "preload", default true)."""

import time

from tests.support.daemon_harness import MODEL_NAME, start_daemon


def loaded_models_after(daemon, seconds: float) -> list:
    deadline = time.monotonic() + seconds
    with daemon.client() as client:
        while True:
            loaded = client.get("/v1/health").json()["models_loaded"]
            if loaded or time.monotonic() > deadline:
                return loaded
            time.sleep(0.1)


def test_the_default_model_is_loaded_before_any_job(tmp_path):
    daemon = start_daemon(tmp_path)
    try:
        assert loaded_models_after(daemon, 60) == [MODEL_NAME]
    finally:
        daemon.stop()
    assert f"preloaded model {MODEL_NAME}" in daemon.log_file.read_text()


def test_preload_can_be_switched_off(tmp_path):
    daemon = start_daemon(tmp_path, config={"preload": False})
    try:
        assert loaded_models_after(daemon, 2) == []
    finally:
        daemon.stop()
    assert "preloaded" not in daemon.log_file.read_text()
