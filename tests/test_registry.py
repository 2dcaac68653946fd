import json
import os

import pytest

from gimp_colorize import contract
from gimp_colorize.errors import BadRequest, InvalidModel, NoModelInstalled, UnknownMode, UnknownModel
from gimp_colorize.registry import Registry
from tests.support import onnx_builders as ob

MANIFEST_NAME = "manifest.json"


@pytest.fixture
def folders(tmp_path):
    shipped, user = tmp_path / "shipped", tmp_path / "user"
    shipped.mkdir()
    user.mkdir()
    return shipped, user


def reasons(registry):
    return {r.file.name: r.reason for r in registry.rejected()}


def test_empty_folders_say_no_trained_model_installed(folders):
    registry = Registry(*folders)
    assert registry.models() == [] and registry.rejected() == []
    with pytest.raises(NoModelInstalled) as caught:
        registry.default_for("full")
    assert caught.value.message.startswith("no trained model installed for mode 'full'")
    assert str(folders[1]) in caught.value.message


def test_missing_folders_are_not_an_error(tmp_path):
    registry = Registry(tmp_path / "nope", tmp_path / "nope2")
    assert registry.models() == [] and registry.rejected() == []


def test_the_shipped_folder_is_consistent():
    # every shipped file is listed with the right sha256 (nothing rejected), so none is unverified
    registry = Registry(user_dir=None)
    for model in registry.models():
        assert model.verified and model.source == "shipped"
    assert registry.rejected() == []


def test_shipped_model_listed_in_manifest_is_verified_and_default(folders):
    shipped, user = folders
    ob.build_tiny_full_model(shipped / "a.onnx", name="tiny-a")
    ob.write_manifest(shipped, [{"file": "a.onnx", "default_for": ["full"]}])
    registry = Registry(shipped, user)
    (model,) = registry.models()
    assert (model.name, model.verified, model.default, model.source) == ("tiny-a", True, True, "shipped")
    assert model.sha256 == ob.sha256_of(shipped / "a.onnx")
    assert registry.default_for("full").name == "tiny-a"
    assert registry.get("tiny-a") == model


def test_shipped_model_needs_a_manifest_entry(folders):
    shipped, user = folders
    ob.build_tiny_full_model(shipped / "a.onnx")
    registry = Registry(shipped, user)
    assert registry.models() == []
    assert "not listed in" in reasons(registry)["a.onnx"]


def test_wrong_hash_in_manifest_is_rejected(folders):
    shipped, user = folders
    ob.build_tiny_full_model(shipped / "a.onnx")
    ob.write_manifest(shipped, [{"file": "a.onnx", "sha256": "0" * 64}])
    registry = Registry(shipped, user)
    assert registry.models() == []
    assert reasons(registry)["a.onnx"].startswith("wrong sha256: expected " + "0" * 64)


def test_truncated_download_is_rejected_by_hash_and_without_hash(folders):
    shipped, user = folders
    good = ob.build_tiny_full_model(shipped / "a.onnx")
    ob.write_manifest(shipped, [{"file": "a.onnx"}])
    ob.write_truncated_copy(good, good.with_suffix(".tmp"))
    os.replace(good.with_suffix(".tmp"), good)  # the manifest still has the full file's hash
    ob.write_truncated_copy(ob.build_tiny_full_model(user / "src.onnx", name="u"), user / "cut.onnx")
    (user / "src.onnx").unlink()
    registry = Registry(shipped, user)
    assert "wrong sha256" in reasons(registry)["a.onnx"]
    assert "truncated" in reasons(registry)["cut.onnx"]


def test_manifest_entry_for_a_missing_file_is_reported(folders):
    shipped, user = folders
    (shipped / MANIFEST_NAME).write_text(json.dumps({"models": [{"file": "gone.onnx", "sha256": "a" * 64}]}))
    assert "listed in manifest.json but the file is missing" in reasons(Registry(shipped, user))["gone.onnx"]


@pytest.mark.parametrize(
    "manifest, reason",
    [
        ("{not json", "unreadable manifest"),
        (json.dumps({"models": {}}), "unreadable manifest"),
        (json.dumps({"models": [{"file": "../x.onnx", "sha256": "a" * 64}]}), "plain .onnx file name"),
        (json.dumps({"models": [{"file": "x.onnx", "sha256": "abc"}]}), "64 hex digits"),
        (json.dumps({"models": [{"file": "x.onnx", "sha256": "a" * 64, "default_for": ["paint"]}]}), "default_for"),
    ],
)
def test_malformed_manifests_are_reported(folders, manifest, reason):
    shipped, user = folders
    (shipped / MANIFEST_NAME).write_text(manifest)
    assert reason in reasons(Registry(shipped, user))[MANIFEST_NAME]


def test_user_models_sidecar_verified_unverified_and_wrong(folders):
    shipped, user = folders
    ob.write_sidecar(ob.build_tiny_full_model(user / "v.onnx", name="verified"))
    ob.build_tiny_full_model(user / "u.onnx", name="unverified")
    ob.write_sidecar(ob.build_tiny_full_model(user / "w.onnx", name="wrong"), digest="f" * 64)
    (ob.build_tiny_full_model(user / "g.onnx", name="garbled").with_name("g.onnx.sha256")).write_text("hello\n")
    registry = Registry(shipped, user)
    assert {m.name: m.verified for m in registry.models()} == {"verified": True, "unverified": False}
    assert "wrong sha256" in reasons(registry)["w.onnx"]
    assert "does not start with a sha256" in reasons(registry)["g.onnx"]
    assert registry.default_for("full").name == "verified"  # verified models are preferred as the default


@pytest.mark.parametrize(
    "build, reason",
    [
        (lambda p: ob.build_unknown_task_model(p), "unknown task 'painting'"),
        (lambda p: ob.build_missing_key_model(p, contract.OUTPUT), "missing metadata key(s) gc.output"),
        (lambda p: p.write_bytes(b""), "empty file"),
    ],
)
def test_every_rejected_user_file_has_a_reason(folders, build, reason):
    shipped, user = folders
    build(user / "bad.onnx")
    registry = Registry(shipped, user)
    assert registry.models() == []
    assert reason in reasons(registry)["bad.onnx"]
    with pytest.raises(UnknownModel, match="was rejected"):
        registry.get("bad")


def test_duplicate_names_keep_the_shipped_model(folders):
    shipped, user = folders
    ob.build_tiny_full_model(shipped / "a.onnx", name="same")
    ob.write_manifest(shipped, [{"file": "a.onnx"}])
    ob.build_tiny_full_model(user / "b.onnx", name="same", output_kind="ab")
    registry = Registry(shipped, user)
    assert [m.source for m in registry.models()] == ["shipped"]
    assert "duplicate model name 'same'" in reasons(registry)["b.onnx"]


def test_user_manifest_default_wins_over_shipped_default(folders):
    shipped, user = folders
    ob.build_tiny_full_model(shipped / "a.onnx", name="shipped-one")
    ob.write_manifest(shipped, [{"file": "a.onnx", "default_for": ["full"]}])
    ob.build_tiny_full_model(user / "b.onnx", name="user-one")
    ob.write_manifest(user, [{"file": "b.onnx", "default_for": ["full"]}])
    registry = Registry(shipped, user)
    assert registry.default_for("full").name == "user-one"
    assert [m.name for m in registry.models() if m.default] == ["user-one"]


def test_defaults_are_per_task_and_other_modes_report_no_model(folders):
    shipped, user = folders
    ob.build_tiny_full_model(user / "f.onnx", name="f")
    registry = Registry(shipped, user)
    assert registry.resolve("full").name == "f"
    with pytest.raises(NoModelInstalled, match="no trained model installed for mode 'diverse'"):
        registry.resolve("diverse")
    with pytest.raises(NoModelInstalled, match="mode 'instance'"):
        registry.resolve("instance")
    ob.build_tiny_diverse_model(user / "d.onnx", name="d")
    registry.refresh()
    assert registry.resolve("diverse").name == "d"


def test_resolve_checks_mode_and_model(folders):
    shipped, user = folders
    ob.build_tiny_full_model(user / "f.onnx", name="f")
    registry = Registry(shipped, user)
    assert registry.resolve("full", "f").name == "f"
    with pytest.raises(UnknownMode, match="unknown mode 'sepia'"):
        registry.resolve("sepia")
    with pytest.raises(UnknownModel, match="unknown model 'nope'; installed: f"):
        registry.resolve("full", "nope")
    with pytest.raises(BadRequest, match="'full' model; mode 'diverse' needs"):
        registry.resolve("diverse", "f")


def test_refresh_picks_up_new_and_removed_files(folders):
    shipped, user = folders
    registry = Registry(shipped, user)
    path = ob.build_tiny_full_model(user / "f.onnx", name="f")
    assert registry.models() == []
    registry.refresh()
    assert [m.name for m in registry.models()] == ["f"]
    path.unlink()
    registry.refresh()
    assert registry.models() == []


def test_from_files_and_name_of(tmp_path):
    path = ob.build_tiny_full_model(tmp_path / "exported.onnx", name="candidate")
    broken = ob.build_unknown_task_model(tmp_path / "broken.onnx")
    registry = Registry.from_files([path, broken])
    assert registry.name_of(path) == "candidate"
    assert registry.get("candidate").source == "file"
    with pytest.raises(InvalidModel, match="unknown task"):
        registry.name_of(broken)


def test_hashes_are_cached_between_refreshes(folders, monkeypatch):
    shipped, user = folders
    ob.build_tiny_full_model(user / "f.onnx", name="f")
    registry = Registry(shipped, user)
    calls = []
    monkeypatch.setattr(contract, "file_sha256", lambda p: calls.append(p) or "x")
    registry.refresh()
    assert calls == [] and registry.models()[0].name == "f"


def test_every_scan_rewrites_the_plugins_models_index(folders, tmp_path):
    shipped, user = folders
    ob.build_tiny_full_model(shipped / "a.onnx", name="tiny-a")
    ob.write_manifest(shipped, [{"file": "a.onnx", "default_for": ["full"]}])
    index_file = tmp_path / "state" / "models-index.json"
    registry = Registry(shipped, user, index_file=index_file)
    index = json.loads(index_file.read_text())
    assert index["format"] == 1 and index["user_models_dir"] == str(user)
    assert [(m["name"], m["task"], m["default"], m["verified"]) for m in index["models"]] == [
        ("tiny-a", "full", True, True)]
    ob.write_sidecar(ob.build_tiny_diverse_model(user / "d.onnx"))
    registry.refresh()
    index = json.loads(index_file.read_text())
    diverse = [m for m in index["models"] if m["task"] == "diverse"]
    assert [(m["name"], m["default"], m["optional_inputs"]) for m in diverse] == [("tiny-diverse", True, ["noise"])]
    assert sorted(p.name for p in index_file.parent.iterdir()) == ["models-index.json"]  # no partial file left


def test_an_unwritable_index_does_not_stop_the_registry(folders, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    registry = Registry(*folders, index_file=blocker / "models-index.json")
    assert registry.models() == []


def test_registry_for_settings_writes_the_index_in_the_state_dir(tmp_path):
    from gimp_colorize.config import load_settings

    env = {"GIMP_COLORIZE_CONFIG_DIR": str(tmp_path / "c"), "GIMP_COLORIZE_STATE_DIR": str(tmp_path / "s"),
           "GIMP_COLORIZE_SHIPPED_MODELS_DIR": str(tmp_path / "none"), "HOME": str(tmp_path)}
    Registry.for_settings(load_settings(env=env))
    assert json.loads((tmp_path / "s" / "models-index.json").read_text())["models"] == []


def test_no_model_for_a_mode_names_the_installed_modes_and_where_a_model_goes(tmp_path):

    user = tmp_path / "user"
    ob.build_tiny_model(user / "only-full.onnx", name="only-full")
    registry = Registry(None, user)
    with pytest.raises(NoModelInstalled) as caught:
        registry.default_for("diverse")
    message = caught.value.message
    assert "installed modes (full)" in message and str(user) in message and "install.py" not in message
