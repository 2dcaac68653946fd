"""Cached Debian roots for tests that need software the host does not have.

A root is built once with mmdebstrap, packed into a compressed tarball in a cache directory and, on
later calls, either reused in place (when its stamp matches) or unpacked from the tarball (seconds).
Commands run inside it through chroot in a private mount namespace, so bind mounts made for a
command vanish with it and never show up on the host.

Used by the GIMP 3 end-to-end tests (a Debian trixie root with gimp 3.0) and the Python 2.7 tests
(a bullseye root with python2.7). Needs root privileges, mmdebstrap and util-linux's unshare.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, Mapping, Sequence, Union

DEFAULT_MIRROR = "http://deb.debian.org/debian"
CACHE_ENV = "GIMP_COLORIZE_TEST_CACHE"
# Bump when the way roots are built changes, so old caches are rebuilt rather than trusted.
FORMAT_VERSION = 1
STAMP_NAME = "stamp.json"

# dpkg filters: documentation, manuals and translations are a third of a GIMP root and no test reads them.
SLIM_DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/gimp/3.0/help/*",
)

# A host path, bound at the same path inside the root, or a (host path, path inside the root) pair.
Bind = Union[str, Path, tuple]


class DebRootError(RuntimeError):
    """A Debian root cannot be built or used; the message says what to do."""


class RootPrivilegesMissing(DebRootError):
    """Building or entering a root needs root privileges (chroot, mount). Tests skip on this one only."""


def default_cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "gimp-colorize-test"


def root_stamp(suite: str, packages: Sequence[str], extra_setup: Sequence[str] = (),
               apt_options: Sequence[str] = ()) -> dict:
    """What a root is made of; two roots with equal stamps are interchangeable."""
    stamp = {
        "format": FORMAT_VERSION,
        "suite": suite,
        "packages": sorted(set(packages)),
        "extra_setup": list(extra_setup),
        "dpkg_options": list(SLIM_DPKG_OPTIONS),
    }
    if apt_options:  # only when used, so the digests of existing roots stay what they were
        stamp["apt_options"] = list(apt_options)
    return stamp


def stamp_digest(stamp: dict) -> str:
    return hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:16]


def check_prerequisites(need_mmdebstrap: bool) -> None:
    if os.geteuid() != 0:
        raise RootPrivilegesMissing("Debian test roots need root privileges (chroot and mount); run as root.")
    missing = [tool for tool in ("unshare", "chroot", "mount", "tar") if shutil.which(tool) is None]
    if need_mmdebstrap and shutil.which("mmdebstrap") is None:
        missing.append("mmdebstrap")
    if missing:
        raise DebRootError(
            "Missing tools for the Debian test root: %s. Install them with "
            "`apt-get install mmdebstrap util-linux coreutils tar`." % ", ".join(missing)
        )


def ensure_debian_root(
    name: str,
    suite: str,
    packages: Sequence[str],
    cache_dir: Path | str | None = None,
    mirror: str = DEFAULT_MIRROR,
    extra_setup: Sequence[str] = (),
    apt_options: Sequence[str] = (),
) -> Path:
    """Return the path of an unpacked Debian `suite` root with `packages` installed.

    `extra_setup` is a list of shell commands run inside the root (as root) after the packages are
    installed; they are part of the cached state and of the stamp, and so are `apt_options` (apt
    configuration lines for the build, e.g. `Acquire::Check-Valid-Until "false"` for a mirror whose
    unstable suite is an older snapshot). Builds and unpacks take a lock per
    name, so parallel test processes wait for each other instead of racing.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stamp = root_stamp(suite, packages, extra_setup, apt_options)
    digest = stamp_digest(stamp)
    root = cache / "roots" / name
    tarball = cache / ("%s-%s.tar%s" % (name, digest, compressor()[1]))
    check_prerequisites(need_mmdebstrap=not tarball.exists())
    cache.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(cache / (name + ".lock")):
        if read_stamp(root) == stamp:
            return root
        if not tarball.exists():
            check_prerequisites(need_mmdebstrap=True)
            build_tarball(tarball, suite, packages, mirror, extra_setup, apt_options)
            remove_stale_tarballs(cache, name, keep=tarball)
        unpack(tarball, root, stamp)
    return root


def compressor() -> tuple[list[str], str]:
    """The compression command and file suffix: zstd when present (fast), else gzip."""
    if shutil.which("zstd"):
        return ["zstd", "-T0", "-3", "-q"], ".zst"
    return ["gzip", "-1"], ".gz"


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_stamp(root: Path) -> dict | None:
    stamp_file = root.parent / (root.name + "." + STAMP_NAME)
    if not root.is_dir() or not stamp_file.is_file():
        return None
    try:
        return json.loads(stamp_file.read_text())
    except (OSError, ValueError):
        return None


def write_stamp(root: Path, stamp: dict) -> None:
    (root.parent / (root.name + "." + STAMP_NAME)).write_text(json.dumps(stamp, sort_keys=True))


def build_tarball(tarball: Path, suite: str, packages: Sequence[str], mirror: str,
                  extra_setup: Sequence[str], apt_options: Sequence[str] = ()) -> None:
    """mmdebstrap into a scratch directory, run the setup commands, then pack it (temp file, then rename)."""
    scratch = Path(tempfile.mkdtemp(prefix="debroot-", dir=tarball.parent))
    target = scratch / "root"
    try:
        run_mmdebstrap(target, suite, packages, mirror, log=scratch.parent / (tarball.name + ".log"),
                       apt_options=apt_options)
        for command in extra_setup:
            result = run_in_root(target, ["/bin/sh", "-c", command], timeout=900)
            if result.returncode != 0:
                raise DebRootError("Setup command %r failed in the %s root:\n%s" % (command, suite, tail(result)))
        pack(target, tarball)
    finally:
        remove_tree(scratch)


def run_mmdebstrap(target: Path, suite: str, packages: Sequence[str], mirror: str, log: Path,
                   apt_options: Sequence[str] = ()) -> None:
    argv = ["mmdebstrap", "--mode=root", "--variant=minbase", "--include=" + ",".join(packages)]
    argv += ["--dpkgopt=" + option for option in SLIM_DPKG_OPTIONS]
    argv += ["--aptopt=" + option for option in apt_options]
    argv += [suite, str(target), mirror]
    with open(log, "w") as log_handle:
        result = subprocess.run(argv, stdout=log_handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        last_lines = "".join(log.read_text(errors="replace").splitlines(True)[-25:])
        raise DebRootError(
            "mmdebstrap could not build the %s root (exit %d; is %s reachable?). Full log: %s\n%s"
            % (suite, result.returncode, mirror, log, last_lines)
        )


def pack(source: Path, tarball: Path) -> None:
    partial = tarball.with_name(tarball.name + ".partial")
    command, _ = compressor()
    tar = ["tar", "--numeric-owner", "--xattrs", "-C", str(source), "-cf", "-", "."]
    with open(partial, "wb") as out:
        producer = subprocess.Popen(tar, stdout=subprocess.PIPE)
        consumer = subprocess.run(command, stdin=producer.stdout, stdout=out)
        producer.stdout.close()
        if producer.wait() != 0 or consumer.returncode != 0:
            partial.unlink()
            raise DebRootError("Could not pack the root %s into %s." % (source, tarball))
    partial.rename(tarball)


def unpack(tarball: Path, root: Path, stamp: dict) -> None:
    """Replace `root` with the tarball's content; the stamp is written last, so a crash leaves no trusted root."""
    root.parent.mkdir(parents=True, exist_ok=True)
    stamp_file = root.parent / (root.name + "." + STAMP_NAME)
    if stamp_file.exists():
        stamp_file.unlink()
    incoming = root.with_name(root.name + ".incoming")
    for stale in (incoming, root):
        if stale.exists():
            remove_tree(stale)
    incoming.mkdir()
    command, _ = compressor()
    decompress = [command[0], "-d", "-c"]
    with open(tarball, "rb") as source:
        producer = subprocess.Popen(decompress, stdin=source, stdout=subprocess.PIPE)
        extract = subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(incoming), "-xpf", "-"],
                                 stdin=producer.stdout)
        producer.stdout.close()
        if producer.wait() != 0 or extract.returncode != 0:
            remove_tree(incoming)
            raise DebRootError("Could not unpack %s; delete it to rebuild the root." % tarball)
    incoming.rename(root)
    write_stamp(root, stamp)


def remove_stale_tarballs(cache: Path, name: str, keep: Path) -> None:
    for old in cache.glob(name + "-*.tar.*"):
        if old != keep and not old.name.endswith(".log"):
            old.unlink()


def mounts_below(path: Path) -> list[str]:
    """Mount points at or below `path` in this mount namespace (read from /proc/self/mountinfo)."""
    prefix = str(path.resolve())
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            mount_point = line.split()[4].replace("\\040", " ")
            if mount_point == prefix or mount_point.startswith(prefix + "/"):
                found.append(mount_point)
    return found


def remove_tree(path: Path) -> None:
    # A leaked bind mount would make rmtree delete host files (the repository, a virtualenv): refuse.
    leaked = mounts_below(path)
    if leaked:
        raise DebRootError("Refusing to delete %s: mounted inside it: %s. Unmount them first." % (path, leaked))
    shutil.rmtree(path)


def tail(result: subprocess.CompletedProcess, lines: int = 30) -> str:
    text = (result.stdout or "") + (result.stderr or "")
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "".join(text.splitlines(True)[-lines:])


def normalise_binds(binds: Sequence[Bind]) -> list[tuple[Path, str]]:
    pairs = []
    for bind in binds:
        host, inside = (bind, bind) if isinstance(bind, (str, Path)) else bind
        inside = "/" + str(inside).lstrip("/")
        pairs.append((Path(host), inside))
    return pairs


def prepare_mount_points(root: Path, binds: list[tuple[Path, str]]) -> None:
    """Create empty directories/files in the root for bind targets (mount needs them to exist)."""
    for host, inside in binds:
        if not host.exists():
            raise DebRootError("Cannot bind %s into the root: it does not exist." % host)
        target = root / inside.lstrip("/")
        if host.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()


def namespace_script(root: Path, binds: list[tuple[Path, str]], env: Mapping[str, str], argv: Sequence[str]) -> str:
    """The shell script run by unshare: mount /proc, /dev and the binds, then chroot with a clean environment."""
    quoted_root = shlex.quote(str(root))
    lines = [
        "set -e",
        "mount -t proc proc %s/proc" % quoted_root,
        "mount --rbind /dev %s/dev" % quoted_root,
    ]
    for host, inside in binds:
        lines.append("mount --rbind %s %s%s" % (shlex.quote(str(host)), quoted_root, shlex.quote(inside)))
    environment = " ".join(shlex.quote("%s=%s" % item) for item in sorted(env.items()))
    lines.append("exec chroot %s /usr/bin/env -i %s %s" % (quoted_root, environment, shlex.join(argv)))
    return "\n".join(lines)


DEFAULT_ENV = {"HOME": "/root", "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}


def run_in_root(
    root: Path | str,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    timeout: float | None = 600,
    binds: Sequence[Bind] = (),
    text: bool = True,
) -> subprocess.CompletedProcess:
    """Run `argv` inside `root` and return the completed process (stdout/stderr captured).

    The environment is exactly DEFAULT_ENV updated with `env`. `binds` are made visible inside the root
    (recursive bind mounts) only for this command: the private mount namespace ends with it. Processes
    that outlive the command (a daemon it started) keep their view of the mounts until they exit.
    """
    check_prerequisites(need_mmdebstrap=False)
    root = Path(root).resolve()
    pairs = normalise_binds(binds)
    prepare_mount_points(root, pairs)
    script = namespace_script(root, pairs, {**DEFAULT_ENV, **(env or {})}, argv)
    # --kill-child: a command killed on timeout must not leave its chrooted child running.
    wrapper = ["unshare", "--mount", "--propagation", "private", "--fork", "--kill-child", "/bin/sh", "-c", script]
    if isinstance(input, bytes):
        text = False
    # errors="replace": GIMP's console output is not always valid UTF-8 (messages in the C locale's encoding).
    return subprocess.run(wrapper, input=input, capture_output=True, timeout=timeout, text=text,
                          errors="replace" if text else None)
