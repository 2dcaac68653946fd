"""The real install.py puts the plug-in where a real GIMP 3.0 finds it."""

import json
import os

import pytest

pytestmark = pytest.mark.gimp


def test_install_writes_an_executable_entry_and_the_config(sandbox):
    entry = sandbox.profile / "plug-ins" / "gimp_colorize" / "gimp_colorize.py"
    assert entry.is_file() and os.access(entry, os.X_OK)
    config = json.loads((sandbox.config_dir / "config.json").read_text())
    assert config["port"] == sandbox.port
    assert config["python"] == str(sandbox.python_wrapper)
    assert (sandbox.config_dir / "token").stat().st_mode & 0o077 == 0


def test_gimp_registers_the_procedure_with_its_arguments(sandbox):
    run = sandbox.run_batch("probe.py", {})
    facts = run.only_facts()
    assert facts["gimp_version"].startswith("3.0"), run.report()
    assert facts["found"], "GIMP did not register the plug-in:\n" + run.report()
    assert any(path.startswith("<Image>/Filters") for path in facts["menu_paths"]), facts
    for argument in ("mode", "model", "temperature", "output", "samples"):
        assert argument in facts["arguments"], facts["arguments"]
