"""Fast checks of the Debian root helper's pure parts (no root is built here)."""

from pathlib import Path

import pytest

from tests.support import debroot


def test_stamp_ignores_package_order_and_duplicates():
    first = debroot.root_stamp("trixie", ["gimp", "python3", "gimp"])
    second = debroot.root_stamp("trixie", ["python3", "gimp"])
    assert debroot.stamp_digest(first) == debroot.stamp_digest(second)


def test_stamp_changes_with_suite_packages_and_setup():
    base = debroot.stamp_digest(debroot.root_stamp("trixie", ["gimp"]))
    assert debroot.stamp_digest(debroot.root_stamp("bookworm", ["gimp"])) != base
    assert debroot.stamp_digest(debroot.root_stamp("trixie", ["gimp", "zstd"])) != base
    assert debroot.stamp_digest(debroot.root_stamp("trixie", ["gimp"], ["true"])) != base


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(debroot.CACHE_ENV, str(tmp_path / "cache"))
    assert debroot.default_cache_dir() == tmp_path / "cache"


def test_binds_keep_the_host_path_unless_given_a_target():
    pairs = debroot.normalise_binds(["/work/x", ("/opt/venv", "inside/venv")])
    assert pairs == [(Path("/work/x"), "/work/x"), (Path("/opt/venv"), "/inside/venv")]


def test_namespace_script_quotes_paths_and_clears_the_environment():
    script = debroot.namespace_script(
        Path("/r o/ot"), [(Path("/a b"), "/a b")], {"HOME": "/root", "X": "it's"}, ["echo", "a b"]
    )
    assert "mount --rbind '/a b' '/r o/ot''/a b'" in script
    last = script.splitlines()[-1]
    assert last.startswith("exec chroot '/r o/ot' /usr/bin/env -i HOME=/root")
    assert "'X=it'\"'\"'s'" in last and last.endswith("echo 'a b'")


def test_mounts_below_finds_proc_and_nothing_in_a_fresh_directory(tmp_path):
    assert "/proc" in debroot.mounts_below(Path("/proc"))
    assert debroot.mounts_below(tmp_path) == []


def test_remove_tree_refuses_a_directory_with_a_mount(tmp_path):
    # /proc is always a mount point: pretending to delete it must be refused before anything is removed.
    with pytest.raises(debroot.DebRootError, match="Refusing to delete"):
        debroot.remove_tree(Path("/proc"))


def test_pack_and_unpack_round_trip(tmp_path):
    source = tmp_path / "source"
    (source / "etc").mkdir(parents=True)
    (source / "etc" / "hello").write_text("hi")
    (source / "run.sh").write_text("#!/bin/sh\n")
    (source / "run.sh").chmod(0o755)
    tarball = tmp_path / ("t.tar" + debroot.compressor()[1])
    debroot.pack(source, tarball)
    stamp = debroot.root_stamp("test", ["x"])
    root = tmp_path / "roots" / "t"
    debroot.unpack(tarball, root, stamp)
    assert (root / "etc" / "hello").read_text() == "hi"
    assert (root / "run.sh").stat().st_mode & 0o111
    assert debroot.read_stamp(root) == stamp


def test_without_root_privileges_the_reason_is_the_skippable_error(monkeypatch, tmp_path):
    monkeypatch.setattr(debroot.os, "geteuid", lambda: 1000)
    with pytest.raises(debroot.RootPrivilegesMissing, match="root privileges"):
        debroot.ensure_debian_root("x", "trixie", ["gimp"], cache_dir=tmp_path)


def test_missing_mmdebstrap_is_a_failure_that_says_how_to_install_it(monkeypatch, tmp_path):
    real_which = debroot.shutil.which
    monkeypatch.setattr(debroot.os, "geteuid", lambda: 0)
    monkeypatch.setattr(debroot.shutil, "which", lambda tool: None if tool == "mmdebstrap" else real_which(tool))
    with pytest.raises(debroot.DebRootError, match="apt-get install mmdebstrap") as raised:
        debroot.ensure_debian_root("x", "trixie", ["gimp"], cache_dir=tmp_path)
    assert not isinstance(raised.value, debroot.RootPrivilegesMissing)


def test_a_matching_unpacked_root_is_reused_without_building(monkeypatch, tmp_path):
    stamp = debroot.root_stamp("trixie", ["gimp"])
    root = tmp_path / "roots" / "r"
    root.mkdir(parents=True)
    debroot.write_stamp(root, stamp)
    monkeypatch.setattr(debroot.os, "geteuid", lambda: 0)
    monkeypatch.setattr(debroot, "build_tarball", lambda *args: pytest.fail("must not rebuild"))
    assert debroot.ensure_debian_root("r", "trixie", ["gimp"], cache_dir=tmp_path) == root


def test_a_cached_tarball_is_unpacked_when_the_root_is_missing(monkeypatch, tmp_path):
    source = tmp_path / "source"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "tool").write_text("x")
    digest = debroot.stamp_digest(debroot.root_stamp("trixie", ["gimp"]))
    debroot.pack(source, tmp_path / ("r-%s.tar%s" % (digest, debroot.compressor()[1])))
    monkeypatch.setattr(debroot.os, "geteuid", lambda: 0)
    monkeypatch.setattr(debroot, "build_tarball", lambda *args: pytest.fail("must not rebuild"))
    root = debroot.ensure_debian_root("r", "trixie", ["gimp"], cache_dir=tmp_path)
    assert (root / "bin" / "tool").read_text() == "x"
