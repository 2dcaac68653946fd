"""Where candidate images come from: Debian packages (fetched, extracted, .rcc archives opened) and user folders.

A source yields `Candidate`s: the original bytes plus provenance (package=version, path inside the
package and inside an .rcc archive, licence). Judging and writing them is the builder's job.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from training.rcc import RccArchive, RccError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".gif"}
DEFAULT_CACHE = Path.home() / ".cache" / "gimp-colorize"


class SourceError(RuntimeError):
    """A source cannot be fetched or read; the message says what to do."""


@dataclass(frozen=True)
class Candidate:
    source: str                  # "gcompris-qt-data=3.1-2" or "user:/path/to/folder"
    path: str                    # path inside the package (or relative to the user folder)
    inner_path: str | None       # path inside the .rcc archive, when the image lives in one
    licence: str
    read: Callable[[], bytes]
    attribution: str = ""        # copyright holder / origin URL where the copyright file names one
    licence_basis: str = ""      # how the licence was found: "per-file entry", "package default (Files: *)", ...

    @property
    def label(self) -> str:
        return f"{self.path}:{self.inner_path}" if self.inner_path else self.path


@dataclass(frozen=True)
class PackageSpec:
    name: str
    role: str                    # "photos" (training targets) or "cutouts" (RGBA augmentation objects)
    roots: tuple[str, ...]       # folders inside the package to scan
    # Curation, decided by looking at contact sheets of what the pixel filters let through; patterns
    # are fnmatch globs on "path" or "path:inner_path". `only`: when set, nothing else is taken.
    exclude: tuple[str, ...] = ()
    only: tuple[str, ...] = ()

    def curated_out(self, label: str) -> bool:
        if self.only and not any(fnmatch.fnmatchcase(label, p) for p in self.only):
            return True
        return any(fnmatch.fnmatchcase(label, p) for p in self.exclude)


_HUGIN_HELP = "usr/share/hugin/xrc/data/help_en_EN/"
PACKAGES = (
    PackageSpec("gcompris-qt-data", "photos", ("usr/share/gcompris-qt/rcc",), exclude=(
        # Paintings (Van Gogh, Cassatt, Bazille ...) and painting puzzles with holes: not photographs.
        "*/activities/paintings/*", "*/activities/babyshapes/resource/image/*", "*Gogh*",
        "*PortraitOfPereTanguy*", "*Eglise_dAuvers*",
        "*/babyshapes/resource/dog2/dog.webp",  # pastel shapes drawing
    )),
    # The HTML tutorials' figures are mostly composites, overlays and screenshots of the examples'
    # own photos; the examples folders hold the originals.
    PackageSpec("opencv-doc", "photos", ("usr/share/doc/opencv-doc",), exclude=(
        "*/opencv4/html/*",
        # Colourful non-photos the pixel filters let through: renders, drawings, a painting, a map.
        *(f"*/examples/{name}" for name in (
            "data/pic*.png", "data/starry_night.jpg", "data/HappyFish.jpg", "data/WindowsLogo.jpg",
            "data/ml.png", "data/smarties.png", "data/pca_test1.jpg", "ximgproc/stanford.png",
            "fuzzy/input.png")),
    )),
    # The manual's images are effect demos, before/after pairs and screenshots; these are plain photos.
    PackageSpec("fotoxx-common", "photos", ("usr/share/fotoxx",), only=tuple(
        f"usr/share/fotoxx/images/{name}.jpg" for name in
        ("blur-background2", "copy-pixels-1b", "flatten2", "red_eyes2", "unbend2"))),
    # Many help images are the same church interior in ten projections; keep one of each scene.
    PackageSpec("hugin-data", "photos", ("usr/share/hugin",), only=tuple(
        _HUGIN_HELP + name for name in
        ("Big_ben_rectilinear.jpg", "600px-Tuebingen_Neckarfront_small15_2006-06-11.jpg",
         "800px-C_Marchi-GrandCentral-adj.jpg", "300px-Lamp_enfuse.jpg", "300px-2125768589_b.jpg",
         "250px-Rectlinear.JPG", "250px-LagardePont-defish.jpg", "360px-Pantheon-150x100-rect-panini.jpg",
         "AliasingPScubic_2x.jpg", "CA_fringes00.jpg", "CA_strange01.jpg", "SB_Blended.jpg",
         "250px-TKS-Mmm-obliquev120-recti.png"))),
    PackageSpec("tuxpaint-stamps-default", "cutouts", ("usr/share/tuxpaint/stamps",),
                exclude=("*/cartoon/*", "*/symbols/*")),
)


# ---- Debian packages -------------------------------------------------------------------------

def find_or_download_deb(name: str, cache: Path) -> Path:
    """The newest cached `NAME_*.deb`, downloading it with `apt-get download` when missing."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob(f"{name}_*.deb"))
    if found:
        return found[-1]
    print(f"downloading {name} with apt-get download into {cache} ...", flush=True)
    try:
        subprocess.run(["apt-get", "download", name], cwd=cache, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600)
    except FileNotFoundError:
        raise SourceError(f"apt-get not found: download {name}_*.deb yourself into {cache}") from None
    except subprocess.CalledProcessError as exc:
        raise SourceError(f"apt-get download {name} failed: {exc.stderr.strip()[-300:]}"
                          f" (try 'apt-get update', or put the .deb into {cache})") from None
    found = sorted(cache.glob(f"{name}_*.deb"))
    if not found:
        raise SourceError(f"apt-get download {name} left no {name}_*.deb in {cache}")
    return found[-1]


def deb_version(deb: Path) -> str:
    return _dpkg_deb("-f", str(deb), "Version").strip()


def extract_deb(deb: Path, dest: Path) -> Path:
    """Extract into dest/<deb stem> once; an interrupted extraction never looks complete."""
    target = dest / deb.stem
    if (target / ".complete").exists():
        return target
    dest.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=deb.stem + ".", dir=dest))
    _dpkg_deb("-x", str(deb), str(work))
    (work / ".complete").touch()
    if target.exists():
        shutil.rmtree(target)
    work.rename(target)
    return target


def _dpkg_deb(*args: str) -> str:
    try:
        done = subprocess.run(["dpkg-deb", *args], check=True, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise SourceError("dpkg-deb not found: install dpkg (Debian/Ubuntu) to unpack .deb files") from None
    except subprocess.CalledProcessError as exc:
        raise SourceError(f"dpkg-deb {' '.join(args)} failed: {exc.stderr.strip()[-300:]}") from None
    return done.stdout


# ---- copyright files (DEP-5) -----------------------------------------------------------------

@dataclass(frozen=True)
class CopyrightStanza:
    patterns: tuple[str, ...]
    licence: str
    holder: str
    comment: str


def parse_dep5(text: str) -> list[CopyrightStanza]:
    """The `Files:` paragraphs of a machine-readable debian/copyright, in file order."""
    stanzas = []
    for paragraph in re.split(r"\n\s*\n", text):
        fields = _dep5_fields(paragraph)
        if "files" in fields and "license" in fields:
            stanzas.append(CopyrightStanza(tuple(fields["files"].split()),
                                           fields["license"].splitlines()[0].strip(),
                                           " ".join(fields.get("copyright", "").split()),
                                           fields.get("comment", "").strip()))
    return stanzas


def _dep5_fields(paragraph: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = None
    for line in paragraph.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            fields[key] = value.strip()
    return fields


class LicenceLookup:
    """Licence of a file by DEP-5 rules: the LAST matching `Files:` paragraph wins.

    Installed files rarely keep their source path, so a pattern may match any trailing part of
    the path; and because GCompris converts its photos to WebP at build time, image extensions
    are compared loosely (fish1.jpg in the copyright file is fish1.webp in the archive).
    """

    def __init__(self, stanzas: list[CopyrightStanza], fallback: str = "unknown"):
        self.stanzas = stanzas
        self.fallback = fallback

    @classmethod
    def from_package(cls, root: Path, package: str) -> LicenceLookup:
        path = root / "usr/share/doc" / package / "copyright"
        if not path.exists():
            return cls([], fallback="unknown (no copyright file)")
        return cls(parse_dep5(path.read_text(encoding="utf-8", errors="replace")))

    def lookup(self, path: str) -> CopyrightStanza | None:
        tails = _path_tails(_loose_image_suffix(path))
        for stanza in reversed(self.stanzas):
            for pattern in stanza.patterns:
                pattern = _loose_image_suffix(pattern)
                if pattern == "*" or any(fnmatch.fnmatchcase(tail, pattern) for tail in tails):
                    return stanza
        return None

    def licence(self, path: str) -> str:
        stanza = self.lookup(path)
        return stanza.licence if stanza else self.fallback


def _path_tails(path: str) -> list[str]:
    parts = PurePosixPath(path).parts
    return ["/".join(parts[i:]) for i in range(len(parts))]


def _loose_image_suffix(path: str) -> str:
    stem, dot, suffix = path.rpartition(".")
    if dot and "." + suffix.lower() in IMAGE_SUFFIXES:
        return stem + ".IMAGE"
    return path


# ---- candidates ------------------------------------------------------------------------------

def package_candidates(root: Path, spec: PackageSpec, version: str) -> Iterator[Candidate]:
    """Image files of an extracted package, including the images inside its .rcc archives."""
    source = f"{spec.name}={version}"
    licences = LicenceLookup.from_package(root, spec.name)
    for scan_root in spec.roots:
        for file in sorted((root / scan_root).rglob("*")):
            rel = file.relative_to(root).as_posix()
            if file.suffix.lower() == ".rcc":
                yield from _rcc_candidates(file, rel, source, licences)
            elif file.suffix.lower() in IMAGE_SUFFIXES and file.is_file():
                yield _candidate(source, rel, None, licences.lookup(rel), licences.fallback, file.read_bytes)


def _rcc_candidates(file: Path, rel: str, source: str, licences: LicenceLookup) -> Iterator[Candidate]:
    try:
        archive = RccArchive.open(file)
        entries = archive.entries()
    except RccError as exc:
        print(f"warning: skipping {rel}: {exc}", flush=True)
        return
    for entry in entries:
        if PurePosixPath(entry.path).suffix.lower() in IMAGE_SUFFIXES:
            # Archive paths start with the project name ("gcompris/src/..."); the copyright file
            # names source paths ("src/..."), which the tail matching handles.
            yield _candidate(source, rel, entry.path, licences.lookup(entry.path), licences.fallback,
                             lambda entry=entry: archive.read(entry))


def _candidate(source, path, inner, stanza, fallback, read) -> Candidate:
    if stanza is None:
        return Candidate(source, path, inner, fallback, read, licence_basis="none found")
    if stanza.patterns == ("*",):
        # Only the catch-all paragraph matched: the file is not listed on its own.
        return Candidate(source, path, inner, stanza.licence, read, licence_basis="package default (Files: *)")
    attribution = "; ".join(part for part in (stanza.holder, stanza.comment) if part)
    return Candidate(source, path, inner, stanza.licence, read, attribution, "per-file entry")


def user_folder_candidates(folder: Path) -> Iterator[Candidate]:
    """Every image below `folder` (ImageNet class folders, COCO train2017/, or flat)."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise SourceError(f"user folder {folder} does not exist or is not a folder")
    source = f"user:{folder}"
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            file = Path(dirpath) / name
            if file.suffix.lower() in IMAGE_SUFFIXES:
                yield Candidate(source, file.relative_to(folder).as_posix(), None,
                                "user-supplied (see the folder's own terms)", file.read_bytes,
                                licence_basis="user folder")
