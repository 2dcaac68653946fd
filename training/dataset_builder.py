"""`python -m training build-dataset` and `python -m training devset`.

build-dataset: Debian packages (+ user folders) -> filtered, de-duplicated colour photos in
OUT/images/, photographic RGBA cut-outs in OUT/cutouts/, and OUT/manifest.json with provenance.
devset: the development evaluation photos (evaluation only; the builder refuses them as training data).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np
from PIL import Image, ImageOps

from gimp_colorize.contract import file_sha256
from training import photo_filter
from training.devset import DevsetGuard, build_devset, devset_argument_parser
from training.sources import (
    DEFAULT_CACHE,
    PACKAGES,
    Candidate,
    SourceError,
    deb_version,
    extract_deb,
    find_or_download_deb,
    package_candidates,
    user_folder_candidates,
)

MAX_LONG_SIDE = 1024
DUPLICATE_DISTANCE = 6       # pHash bits; near-identical re-encodes and resizes differ by 0-4
JPEG_QUALITY = 95
MANIFEST_VERSION = 1


class BuildError(RuntimeError):
    """A problem the user can fix (bad argument, missing tool, unreadable folder)."""


@dataclass
class Tally:
    found: Counter = field(default_factory=Counter)
    rejected: dict = field(default_factory=lambda: defaultdict(Counter))
    duplicates: Counter = field(default_factory=Counter)
    kept: Counter = field(default_factory=Counter)      # photos
    cutouts: Counter = field(default_factory=Counter)


# ---- decoding and hashing --------------------------------------------------------------------

def decode(data: bytes) -> Image.Image:
    """Bytes -> RGB or RGBA PIL image, EXIF orientation applied; raises ValueError when unreadable."""
    try:
        image = Image.open(io.BytesIO(data))
        image.seek(0)
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot decode image ({exc})") from None
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if image.mode.startswith("I;16") or image.mode == "I":
        image = image.point(lambda v: v / 256).convert("L")
    return image.convert("RGBA" if has_alpha else "RGB")


def downscale(image: Image.Image, long_side: int = MAX_LONG_SIDE) -> Image.Image:
    if max(image.size) <= long_side:
        return image
    scale = long_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def phash(image: Image.Image) -> int:
    return photo_filter.dct_hash(photo_filter.gray_thumbnail(image))


def split_for(sha256: str, seed: int, val_fraction: float) -> str:
    """Deterministic: depends only on the image bytes and the seed, not on the order of discovery."""
    digest = hashlib.sha256(f"{seed}:{sha256}".encode()).digest()
    return "val" if int.from_bytes(digest[:8], "big") / 2.0 ** 64 < val_fraction else "train"


# ---- the pool --------------------------------------------------------------------------------

class PoolBuilder:
    """Judges candidates and writes the kept ones at once into a staging folder next to `out`.

    Nothing but records and hashes stays in memory, so user folders of any size fit; `finish()`
    writes the manifest and swaps the staging folder in, `abort()` (or an exception inside a
    `with` block) removes it, so a reader never sees half a pool.
    """

    def __init__(self, guard: DevsetGuard, out: Path, seed: int = 0, val_fraction: float = 0.1):
        self.guard = guard
        self.seed = seed
        self.val_fraction = val_fraction
        self.out = Path(out).resolve()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=self.out.name + ".partial-", dir=self.out.parent))
        for folder in ("images", "cutouts"):
            (self.staging / folder).mkdir()
        self.tally = Tally()
        self.records: dict[str, list[dict]] = {"photos": [], "cutouts": []}
        self._index = photo_filter.HashIndex(DUPLICATE_DISTANCE)   # photo pHash -> position in records
        self.rejected_thumbs: dict[str, list[Image.Image]] = defaultdict(list)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def add(self, candidate: Candidate, role: str) -> None:
        self.tally.found[candidate.source] += 1
        verdict, image, record = self._judge(candidate, role)
        if verdict == "to_cutouts":
            # A photo with a transparent background is a cut-out, not a training target.
            self.tally.rejected[candidate.source][verdict] += 1
            self.records["cutouts"].append(self._store(record, image, "cutouts"))
        elif verdict is not None:
            self.tally.rejected[candidate.source][verdict] += 1
            if image is not None and len(self.rejected_thumbs[verdict]) < 400:
                self.rejected_thumbs[verdict].append(_thumb(image))
        elif role == "cutouts":
            self.records["cutouts"].append(self._store(record, image, "cutouts"))
        else:
            self._add_photo(record, image.convert("RGB"))  # at most a sliver was transparent

    def skip(self, candidate: Candidate, reason: str) -> None:
        """Counted but never read: excluded by a package's curation list."""
        self.tally.found[candidate.source] += 1
        self.tally.rejected[candidate.source][reason] += 1

    def _judge(self, candidate: Candidate, role: str):
        """(rejection reason or None or "to_cutouts", decoded image or None, record or None)."""
        try:
            data = candidate.read()
        except (OSError, ValueError) as exc:  # RccError is a ValueError; one bad member must not stop the build
            print(f"warning: cannot read {candidate.label}: {exc}", flush=True)
            return "unreadable", None, None
        sha = hashlib.sha256(data).hexdigest()
        try:
            image = decode(data)
        except ValueError:
            return "undecodable", None, None
        if self.guard.matches(sha, image):
            print(f"refusing {candidate.source} {candidate.label}: it is a development evaluation photo", flush=True)
            return "devset_image", image, None
        judge = photo_filter.judge if role == "photos" else photo_filter.judge_cutout
        pixels = np.asarray(image)
        verdict = judge(pixels)
        # Only lossless files: in lossy WebP, cartoon fills are noisy and pass the cut-out test.
        if verdict.reason == "transparent" and data[:8] == b"\x89PNG\r\n\x1a\n" \
                and photo_filter.judge_cutout(pixels).keep:
            return "to_cutouts", image, self._record(candidate, sha, image, "cutouts")
        if not verdict.keep:
            return verdict.reason, image, None
        return None, image, self._record(candidate, sha, image, role)

    def _record(self, candidate: Candidate, sha: str, image: Image.Image, role: str) -> dict:
        record = {"id": sha[:16], "source": candidate.source, "path": candidate.path,
                  "inner_path": candidate.inner_path, "sha256": sha, "licence": candidate.licence,
                  "attribution": candidate.attribution, "licence_basis": candidate.licence_basis,
                  "original_width": image.width, "original_height": image.height}
        if role == "photos":
            record["split"] = split_for(sha, self.seed, self.val_fraction)
        return record

    def _add_photo(self, record: dict, image: Image.Image) -> None:
        """Keep one photo per pHash cluster: the one with the most pixels."""
        value = phash(image)
        position = self._index.find(value)
        if position is None:
            self._index.add(value, len(self.records["photos"]))
            self.records["photos"].append(self._store(record, image, "photos", value))
            return
        old = self.records["photos"][position]
        self.tally.duplicates[record["source"]] += 1
        if record["original_width"] * record["original_height"] > old["original_width"] * old["original_height"]:
            (self.staging / old["file"]).unlink()
            record["duplicates"] = old.get("duplicates", []) + [_provenance(old)]
            self.records["photos"][position] = self._store(record, image, "photos", value)
            self._index.add(value, position)
        else:
            old.setdefault("duplicates", []).append(_provenance(record))

    def _store(self, record: dict, image: Image.Image, role: str, value: int | None = None) -> dict:
        image = downscale(image)
        folder, suffix = ("images", ".jpg") if role == "photos" else ("cutouts", ".png")
        record = dict(record, file=f"{folder}/{record['id']}{suffix}", width=image.width, height=image.height,
                      phash=f"{phash(image.convert('RGB')) if value is None else value:016x}")
        if suffix == ".jpg":
            # 4:4:4 chroma: the chroma is what we train on, do not let JPEG halve it.
            image.save(self.staging / record["file"], quality=JPEG_QUALITY, subsampling=0)
        else:
            (self.staging / record["file"]).write_bytes(_png_bytes(_clear_hidden(image)))
        return record

    def finish(self, meta: dict, sheets: bool = True) -> dict:
        """Write the manifest (and contact sheets), then swap the staging folder into `out`."""
        self.tally.kept = Counter(r["source"] for r in self.records["photos"])
        self.tally.cutouts = Counter(r["source"] for r in self.records["cutouts"])
        images = sorted(self.records["photos"], key=lambda r: r["id"])
        cutouts = sorted(self.records["cutouts"], key=lambda r: r["id"])
        manifest = dict(meta, summary=summary_rows(self.tally), images=images, cutouts=cutouts)
        (self.staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        if sheets:
            _write_sheets(self.rejected_thumbs, images, cutouts, self.staging)
        _swap_in(self.staging, self.out)
        return manifest

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _provenance(record: dict) -> dict:
    return {key: record[key] for key in ("source", "path", "inner_path", "sha256")}


def _thumb(image: Image.Image, side: int = 96) -> Image.Image:
    thumb = Image.new("RGB", image.size, (60, 60, 60))
    thumb.paste(image.convert("RGB"), mask=image.getchannel("A") if image.mode == "RGBA" else None)
    thumb.thumbnail((side, side))
    return thumb


# ---- writing ---------------------------------------------------------------------------------

def _clear_hidden(image: Image.Image) -> Image.Image:
    """Zero the colour under fully transparent pixels: it is invisible junk that only costs disk."""
    rgba = np.asarray(image.convert("RGBA")).copy()
    rgba[rgba[:, :, 3] == 0] = 0
    return Image.fromarray(rgba, "RGBA")


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _swap_in(work: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(out.name + f".old-{int(time.time())}")
        out.rename(old)
    work.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def contact_sheet(thumbs: list[Image.Image], columns: int = 12, side: int = 96) -> Image.Image:
    rows = max(1, -(-len(thumbs) // columns))
    sheet = Image.new("RGB", (columns * side, rows * side), (40, 40, 40))
    for i, thumb in enumerate(thumbs):
        sheet.paste(thumb, ((i % columns) * side, (i // columns) * side))
    return sheet


def _write_sheets(rejected_thumbs: dict, images: list, cutouts: list, work: Path) -> None:
    sheets = work / "sheets"
    sheets.mkdir()
    for name, records in (("kept", images), ("cutouts", cutouts)):
        for page in range(0, len(records), 120):
            thumbs = [_thumb(Image.open(work / r["file"])) for r in records[page:page + 120]]
            contact_sheet(thumbs).save(sheets / f"{name}-{page // 120:02d}.png")
    for reason, thumbs in rejected_thumbs.items():
        contact_sheet(thumbs[:240]).save(sheets / f"rejected-{reason}.png")


# ---- summary ---------------------------------------------------------------------------------

def summary_rows(tally: Tally) -> list[dict]:
    rows = []
    for source in tally.found:
        rejected = dict(sorted(tally.rejected[source].items()))
        rows.append({"source": source, "found": tally.found[source], "rejected": rejected,
                     "duplicates": tally.duplicates[source], "kept": tally.kept[source],
                     "cutouts": tally.cutouts[source]})
    return rows


def format_summary(rows: list[dict]) -> str:
    reasons = sorted({reason for row in rows for reason in row["rejected"]})
    header = ["source", "found", *reasons, "duplicates", "kept", "cutouts"]
    table = [[row["source"], row["found"], *(row["rejected"].get(r, 0) for r in reasons),
              row["duplicates"], row["kept"], row["cutouts"]] for row in rows]
    table.append(["total", *(sum(row[i] for row in table) for i in range(1, len(header)))])
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *table)]
    lines = ["  ".join(str(cell).rjust(w) if i else str(cell).ljust(w) for i, (cell, w) in enumerate(zip(line, widths)))
             for line in [header, *table]]
    return "\n".join(lines)


# ---- commands --------------------------------------------------------------------------------

def build_argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training build-dataset",
                                     description="Assemble the training pool from Debian packages and user folders.")
    parser.add_argument("--out", required=True, type=Path, help="output folder (replaced atomically)")
    parser.add_argument("--deb-cache", type=Path, default=DEFAULT_CACHE / "debs",
                        help="where .deb files are kept (apt-get download fills it when missing)")
    parser.add_argument("--extract-dir", type=Path, default=DEFAULT_CACHE / "extracted",
                        help="where packages are unpacked with dpkg-deb -x")
    parser.add_argument("--user-folder", type=Path, action="append", default=[],
                        help="a folder of your own images (scanned recursively); repeatable")
    parser.add_argument("--no-debian", action="store_true", help="only use --user-folder images")
    parser.add_argument("--devset", type=Path, default=None,
                        help="a devset folder whose photos must never be trained on (its manifest.json)")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-sheets", action="store_true", help="skip the contact sheets in OUT/sheets/")
    return parser


def run_build(args) -> dict:
    if not 0.0 <= args.val_fraction < 1.0:
        raise BuildError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if args.no_debian and not args.user_folder:
        raise BuildError("--no-debian needs at least one --user-folder")
    guard = DevsetGuard.load(args.devset)
    with PoolBuilder(guard, args.out, seed=args.seed, val_fraction=args.val_fraction) as builder:
        sources = [] if args.no_debian else _add_packages(builder, args.deb_cache, args.extract_dir)
        for folder in args.user_folder:
            print(f"scanning user folder {folder} ...", flush=True)
            for candidate in user_folder_candidates(folder):
                builder.add(candidate, "photos")
            sources.append({"source": f"user:{folder.resolve()}", "role": "photos"})
        meta = {"manifest_version": MANIFEST_VERSION,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "command": "python -m training build-dataset " + " ".join(args.argv),
                "seed": args.seed, "val_fraction": args.val_fraction, "max_long_side": MAX_LONG_SIDE,
                "duplicate_distance": DUPLICATE_DISTANCE, "sources": sources, "filters": _filter_settings()}
        manifest = builder.finish(meta, sheets=not args.no_sheets)
    print(format_summary(manifest["summary"]))
    counts = Counter(r["split"] for r in manifest["images"])
    print(f"wrote {len(manifest['images'])} photos (train {counts['train']}, val {counts['val']}) and "
          f"{len(manifest['cutouts'])} cut-outs to {args.out}")
    return manifest


def _add_packages(builder: PoolBuilder, deb_cache: Path, extract_dir: Path) -> list[dict]:
    sources = []
    for spec in PACKAGES:
        deb = find_or_download_deb(spec.name, deb_cache)
        version = deb_version(deb)
        root = extract_deb(deb, extract_dir)
        print(f"scanning {spec.name}={version} ({spec.role}) ...", flush=True)
        for candidate in package_candidates(root, spec, version):
            if spec.curated_out(candidate.label):
                builder.skip(candidate, "curated_out")
            else:
                builder.add(candidate, spec.role)
        sources.append({"source": f"{spec.name}={version}", "role": spec.role, "deb": deb.name,
                        "deb_sha256": file_sha256(deb)})
    return sources


def _filter_settings() -> dict:
    names = ["MIN_SHORT_SIDE", "MAX_TOP_COLOUR_SHARE", "MIN_DISTINCT_COLOURS", "MIN_MEAN_CHROMA",
             "MIN_COLOURFUL_SHARE", "COLOURFUL_CHROMA", "MAX_FLAT_PAIR_SHARE", "MAX_FLAT_NEUTRAL_SHARE",
             "MAX_DRAWN_OVERLAY_SHARE", "MAX_TRANSPARENT_SHARE", "MIN_OPAQUE_SHARE", "MAX_OPAQUE_SHARE",
             "MAX_CUTOUT_FLAT_PAIR_SHARE"]
    return {name.lower(): getattr(photo_filter, name) for name in names}


def main(argv=None, command: str = "build-dataset") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_argument_parser() if command == "build-dataset" else devset_argument_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        if command == "build-dataset":
            run_build(args)
        else:
            build_devset(args.out, args.wheel_cache)
    except (BuildError, SourceError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
