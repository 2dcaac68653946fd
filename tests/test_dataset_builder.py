"""The dataset builder on a fake extracted package made here: filters, de-duplication, manifest, devset guard."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_rcc import write_qres

from training import dataset_builder, photo_filter
from training.dataset_builder import PoolBuilder, format_summary, split_for
from training.devset import DevsetGuard
from training.sources import LicenceLookup, PackageSpec, package_candidates, parse_dep5


def photo_like(seed: int, size=(240, 180)) -> np.ndarray:
    """Smooth colour field + blobs + sensor-like noise: what the filters should call a photo."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    base = np.stack([np.sin(x * rng.uniform(2, 6) + rng.uniform(0, 6)),
                     np.cos(y * rng.uniform(2, 6) + rng.uniform(0, 6)),
                     np.sin((x + y) * rng.uniform(2, 6))], axis=2) * 70 + rng.uniform(80, 170, 3)
    for _ in range(6):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(10, 50)
        base[(y * max(w, h) - cy) ** 2 + (x * max(w, h) - cx) ** 2 < r * r] += rng.uniform(-60, 60, 3)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def diagram_like(size=(300, 200)) -> np.ndarray:
    """White page, a few flat boxes and lines: a typical tutorial figure."""
    img = np.full((size[1], size[0], 3), 255, np.uint8)
    img[20:80, 30:120] = (200, 40, 40)
    img[100:160, 150:260] = (40, 90, 220)
    img[90:93, :] = 0
    img[:, 140:142] = 0
    return img


def encode(array: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **kw)
    return buffer.getvalue()


# ---- the filters on their own ----------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_photo_like_images_are_kept(seed):
    assert photo_filter.judge(photo_like(seed)).reason is None


def test_diagram_is_rejected():
    assert photo_filter.judge(diagram_like()).reason in ("few_colours", "flat_synthetic")


def test_gray_photo_is_rejected_as_near_gray():
    gray = photo_like(1).mean(axis=2, keepdims=True).astype(np.uint8).repeat(3, axis=2)
    assert photo_filter.judge(gray).reason == "near_gray"


def test_small_image_is_rejected():
    assert photo_filter.judge(photo_like(2, size=(100, 90))).reason == "too_small"


def test_screenshot_with_a_photo_inside_is_rejected():
    # The embedded photo brings thousands of colours; the flat window panels give it away.
    img = np.zeros((300, 400, 3), np.uint8)
    img[:, :200] = (30, 120, 200)
    img[:, 200:] = (220, 220, 210)
    img[20:80, 20:380] = photo_like(9, (360, 60))
    assert photo_filter.judge(img).reason in ("flat_synthetic", "few_colours")


def test_side_by_side_comparison_is_rejected_as_multi_panel():
    left, right = photo_like(8, (200, 180)), photo_like(9, (200, 180))
    gap = np.full((180, 6, 3), 255, np.uint8)
    assert photo_filter.judge(np.concatenate([left, gap, right], axis=1)).reason == "multi_panel"


def test_thin_pure_colour_strokes_are_rejected_as_overlay():
    img = photo_like(3, (300, 240))
    img[50:150, 100] = (0, 255, 0)        # a detection box edge
    img[120, 20:280] = (255, 0, 0)
    assert photo_filter.judge(img).reason == "drawn_overlay"
    blob = photo_like(3, (300, 240))
    blob[50:150, 80:200] = (255, 0, 0)     # a clipped red area is not an overlay
    assert photo_filter.judge(blob).reason != "drawn_overlay"


def test_phash_is_stable_under_resize_and_jpeg_but_separates_different_photos():
    a = Image.fromarray(photo_like(3, size=(400, 300)))
    a_small = Image.open(io.BytesIO(encode(np.asarray(a.resize((300, 225))), "JPEG", quality=80)))
    b = Image.fromarray(photo_like(4, size=(400, 300)))
    h = dataset_builder.phash
    assert photo_filter.hamming(h(a), h(a_small)) <= dataset_builder.DUPLICATE_DISTANCE
    assert photo_filter.hamming(h(a), h(b)) > dataset_builder.DUPLICATE_DISTANCE


def test_hash_index_finds_exactly_what_brute_force_finds():
    rng = np.random.default_rng(0)
    stored = [int(v) for v in rng.integers(0, 2 ** 63, 300)]
    index = photo_filter.HashIndex(6)
    for i, value in enumerate(stored):
        index.add(value, i)
    queries = [stored[i] ^ sum(1 << int(b) for b in rng.choice(64, k, replace=False))
               for i, k in zip(rng.integers(0, 300, 200), rng.integers(0, 10, 200))]
    for query in queries:
        found = index.find(query)
        near = [i for i, v in enumerate(stored) if photo_filter.hamming(v, query) <= 6]
        assert (found is None) == (not near)
        assert found is None or found in near


def test_dct_matrix_is_orthonormal():
    basis = photo_filter._dct_matrix(32)
    np.testing.assert_allclose(basis @ basis.T, np.eye(32), atol=1e-9)


def test_split_is_deterministic_and_roughly_the_requested_fraction():
    shas = [f"{i:064x}" for i in range(2000)]
    splits = [split_for(s, 0, 0.1) for s in shas]
    assert splits == [split_for(s, 0, 0.1) for s in shas]
    assert 0.07 < splits.count("val") / len(splits) < 0.13
    assert splits != [split_for(s, 1, 0.1) for s in shas]


# ---- licences ----------------------------------------------------------------------------------

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: 2020 Someone
License: GPL-3+

Files: src/activities/fishes/fish1.jpg
Copyright: Jane Diver
License: CC-BY-SA-4.0
Comment: https://example.org/fish1

Files: src/activities/monuments/*
       src/other/*.png
Copyright: Pat
License: CC0
"""


def test_dep5_last_match_wins_and_image_suffixes_are_loose():
    lookup = LicenceLookup(parse_dep5(COPYRIGHT))
    assert lookup.licence("gcompris/src/activities/fishes/fish1.webp") == "CC-BY-SA-4.0"
    assert lookup.licence("gcompris/src/activities/monuments/tower.webp") == "CC0"
    assert lookup.licence("gcompris/src/other/thing.webp") == "CC0"
    assert lookup.licence("gcompris/src/activities/fishes/fish2.webp") == "GPL-3+"
    assert "Jane Diver" in lookup.lookup("src/activities/fishes/fish1.webp").holder


# ---- the whole builder on a fake package ------------------------------------------------------

@pytest.fixture()
def fake_package(tmp_path) -> Path:
    """An 'extracted' package: loose files, an .rcc archive with WebP photos, a copyright file, cut-outs."""
    root = tmp_path / "pkg"
    (root / "usr/share/doc/fake").mkdir(parents=True)
    (root / "usr/share/doc/fake/copyright").write_text(COPYRIGHT)
    data = root / "usr/share/fake"
    (data / "loose").mkdir(parents=True)
    (data / "loose/photo_a.jpg").write_bytes(encode(photo_like(10, (500, 375)), "JPEG", quality=92))
    # The same photo smaller and re-encoded: a duplicate; the larger one must win.
    small = np.asarray(Image.fromarray(photo_like(10, (500, 375))).resize((320, 240)))
    (data / "loose/photo_a_small.png").write_bytes(encode(small))
    (data / "loose/diagram.png").write_bytes(encode(diagram_like()))
    (data / "loose/tiny.png").write_bytes(encode(photo_like(11, (90, 60))))
    (data / "loose/broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    rcc = {"gcompris/src/activities/fishes/fish1.webp": encode(photo_like(12), "WEBP", quality=90),
           "gcompris/src/activities/monuments/tower.webp": encode(photo_like(13, (200, 300)), "WEBP", lossless=True),
           "gcompris/src/activities/x/Main.qml": b"import QtQuick 2.0",
           # Lossy WebP with alpha: neither a training photo nor trusted as a cut-out.
           "gcompris/src/activities/x/sprite.webp": encode(photo_cutout(15), "WEBP", quality=80)}
    (data / "archive.rcc").write_bytes(write_qres(rcc, 3, compress=True))
    (data / "loose/object.png").write_bytes(encode(photo_cutout(14)))
    return root


def photo_cutout(seed: int) -> np.ndarray:
    """A photo-like disc on a transparent background."""
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[..., :3] = photo_like(seed, (200, 200))
    yy, xx = np.mgrid[0:200, 0:200]
    rgba[..., 3] = np.where((yy - 100) ** 2 + (xx - 100) ** 2 < 70 ** 2, 255, 0)
    return rgba


SPEC = PackageSpec("fake", "photos", ("usr/share/fake",))


def build(root, tmp_path, guard=None, **kw):
    out = tmp_path / "pool"
    with PoolBuilder(guard or DevsetGuard(set(), []), out, **kw) as builder:
        for candidate in package_candidates(root, SPEC, "1.0-1"):
            builder.add(candidate, "photos")
        manifest = builder.finish({"command": "test"}, sheets=True)
    return builder, out, manifest


def test_builder_keeps_photos_drops_the_rest_and_writes_a_manifest(fake_package, tmp_path):
    builder, out, manifest = build(fake_package, tmp_path)
    paths = sorted(record["inner_path"] or record["path"] for record in manifest["images"])
    assert paths == ["gcompris/src/activities/fishes/fish1.webp", "gcompris/src/activities/monuments/tower.webp",
                     "usr/share/fake/loose/photo_a.jpg"]
    rejected = builder.tally.rejected["fake=1.0-1"]
    assert rejected["too_small"] == 1 and rejected["undecodable"] == 1 and rejected["transparent"] == 1
    assert rejected["few_colours"] + rejected["flat_synthetic"] == 1
    assert builder.tally.duplicates["fake=1.0-1"] == 1
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["images"] == manifest["images"]
    for record in manifest["images"]:
        for key in ("id", "file", "source", "path", "sha256", "licence", "width", "height", "split"):
            assert record[key] not in (None, ""), key
        assert record["source"] == "fake=1.0-1"
        assert record["split"] in ("train", "val")
        with Image.open(out / record["file"]) as written:
            assert written.size == (record["width"], record["height"]) and written.mode == "RGB"
    by_path = {r["inner_path"] or r["path"]: r for r in manifest["images"]}
    assert by_path["gcompris/src/activities/fishes/fish1.webp"]["licence"] == "CC-BY-SA-4.0"
    assert by_path["gcompris/src/activities/fishes/fish1.webp"]["path"] == "usr/share/fake/archive.rcc"
    assert by_path["gcompris/src/activities/monuments/tower.webp"]["licence"] == "CC0"
    assert by_path["usr/share/fake/loose/photo_a.jpg"]["licence"] == "GPL-3+"
    assert by_path["usr/share/fake/loose/photo_a.jpg"]["duplicates"][0]["path"].endswith("photo_a_small.png")
    assert by_path["gcompris/src/activities/fishes/fish1.webp"]["licence_basis"] == "per-file entry"
    assert by_path["usr/share/fake/loose/photo_a.jpg"]["licence_basis"].startswith("package default")
    # A photo with a transparent background goes to the cut-outs, as RGBA PNG, without a split.
    assert [r["path"] for r in manifest["cutouts"]] == ["usr/share/fake/loose/object.png"]
    with Image.open(out / manifest["cutouts"][0]["file"]) as cutout:
        assert cutout.mode == "RGBA"
    assert (out / "sheets/kept-00.png").exists()
    assert "total" in format_summary(manifest["summary"])
    # Only what the manifest lists is on disk (the replaced smaller duplicate was never kept).
    assert sorted(p.relative_to(out).as_posix() for p in out.glob("images/*")) == \
        sorted(r["file"] for r in manifest["images"])
    assert not list(tmp_path.glob("pool.partial-*"))


def test_large_images_are_downscaled(fake_package, tmp_path, monkeypatch):
    monkeypatch.setattr(dataset_builder, "MAX_LONG_SIDE", 256)
    monkeypatch.setattr(dataset_builder.downscale, "__defaults__", (256,))
    _, _, manifest = build(fake_package, tmp_path)
    assert max(max(r["width"], r["height"]) for r in manifest["images"]) == 256
    assert any(r["original_width"] == 500 for r in manifest["images"])


def test_devset_photos_are_refused(fake_package, tmp_path):
    with Image.open(fake_package / "usr/share/fake/loose/photo_a.jpg") as image:
        image = image.convert("RGB")
        guard_by_phash = DevsetGuard(set(), [dataset_builder.phash(image)])
    builder, _, manifest = build(fake_package, tmp_path, guard=guard_by_phash)
    assert builder.tally.rejected["fake=1.0-1"]["devset_image"] == 2  # the photo and its smaller copy
    assert all("photo_a" not in r["path"] for r in manifest["images"])


def test_builtin_guard_refuses_a_devset_photo_by_hash():
    sha = "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"  # astronaut.png in scikit-image
    assert DevsetGuard.load(None).matches(sha, Image.new("RGB", (8, 8)))
    assert not DevsetGuard.load(None).matches("0" * 64, Image.fromarray(photo_like(5)))


def test_devset_guard_reads_a_devset_manifest(tmp_path):
    photo = Image.fromarray(photo_like(6))
    (tmp_path / "manifest.json").write_text(json.dumps({"photos": [
        {"sha256": "a" * 64, "png_sha256": "b" * 64, "phash": f"{dataset_builder.phash(photo):016x}"}]}))
    guard = DevsetGuard.load(tmp_path)
    assert guard.matches("b" * 64, Image.new("RGB", (8, 8)))
    assert guard.matches("c" * 64, photo.resize((200, 150)))


def test_cutouts_keep_photographic_objects_only(tmp_path):
    rgba = photo_cutout(7)
    cartoon = rgba.copy()
    cartoon[..., :3] = (250, 200, 30)
    cartoon[95:105, :, :3] = 0
    assert photo_filter.judge_cutout(rgba).reason is None
    assert photo_filter.judge_cutout(cartoon).reason in ("few_colours", "flat_synthetic")
    assert photo_filter.judge_cutout(rgba[..., :3]).reason == "no_alpha"


def test_cli_user_folder_only(tmp_path, capsys):
    folder = tmp_path / "mine" / "n01440764"
    folder.mkdir(parents=True)
    for i in range(3):
        (folder / f"img{i}.JPEG").write_bytes(encode(photo_like(20 + i), "JPEG", quality=90))
    (folder / "notes.txt").write_text("ignored")
    out = tmp_path / "pool"
    code = dataset_builder.main(["--out", str(out), "--no-debian", "--user-folder", str(tmp_path / "mine"),
                                 "--no-sheets"], command="build-dataset")
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["images"]) == 3
    assert {r["source"] for r in manifest["images"]} == {f"user:{(tmp_path / 'mine').resolve()}"}
    assert manifest["images"][0]["path"].startswith("n01440764/")
    assert "kept" in capsys.readouterr().out
    assert not list(tmp_path.glob("pool.partial-*"))


def test_cli_reports_a_missing_user_folder_without_traceback(tmp_path, capsys):
    code = dataset_builder.main(["--out", str(tmp_path / "pool"), "--no-debian", "--user-folder",
                                 str(tmp_path / "nope")], command="build-dataset")
    assert code == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "pool").exists()
    assert not list(tmp_path.glob("pool.partial-*"))


# ---- the devset command on fake wheels --------------------------------------------------------

def fake_wheels(cache: Path) -> None:
    """Wheels with the right names and members, holding generated photos (no network, no real wheel)."""
    from training.devset import DEV_WHEELS
    cache.mkdir()
    for seed, wheel in enumerate(DEV_WHEELS):
        version = wheel.requirement.split("==")[1] if "==" in wheel.requirement else "9.9"
        with zipfile.ZipFile(cache / f"{wheel.project}-{version}-py3-none-any.whl", "w") as archive:
            for i, photo in enumerate(wheel.photos):
                fmt = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP"}[photo.member.rsplit(".", 1)[1]]
                archive.writestr(photo.member, encode(photo_like(100 + 10 * seed + i), fmt))
            archive.writestr("other/not_a_devset_photo.png", encode(photo_like(99)))


def test_devset_command_writes_the_twelve_photos_and_guards_them(tmp_path):
    fake_wheels(tmp_path / "wheels")
    out = tmp_path / "devset"
    assert dataset_builder.main(["--out", str(out), "--wheel-cache", str(tmp_path / "wheels")], command="devset") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    names = sorted(p["file"] for p in manifest["photos"])
    assert len(names) == 12 and "china.png" in names and "I19.png" in names
    assert sorted(p.name for p in out.glob("*.png")) == names
    assert all(p["licence"] and len(p["sha256"]) == 64 for p in manifest["photos"])
    # A user folder holding a devset photo (as written, and re-encoded smaller) gets nothing into the pool.
    user = tmp_path / "user"
    user.mkdir()
    (user / "copy.png").write_bytes((out / "china.png").read_bytes())
    with Image.open(out / "coffee.png") as coffee:
        coffee.resize((200, 133)).save(user / "coffee_small.jpg", quality=85)
    code = dataset_builder.main(["--out", str(tmp_path / "pool"), "--no-debian", "--no-sheets", "--devset", str(out),
                                 "--user-folder", str(user)], command="build-dataset")
    assert code == 0
    pool = json.loads((tmp_path / "pool/manifest.json").read_text())
    assert pool["images"] == []
    assert pool["summary"][0]["rejected"] == {"devset_image": 2}


def test_devset_reports_a_wheel_without_the_photo(tmp_path):
    fake_wheels(tmp_path / "wheels")
    broken = next((tmp_path / "wheels").glob("scikit_learn-*.whl"))
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("sklearn/__init__.py", "")
    code = dataset_builder.main(["--out", str(tmp_path / "devset"), "--wheel-cache", str(tmp_path / "wheels")],
                                command="devset")
    assert code == 1
    assert not (tmp_path / "devset").exists()
    assert not list(tmp_path.glob("devset.partial-*"))


def test_a_larger_duplicate_found_later_replaces_the_smaller(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    large = photo_like(30, (480, 360))
    (folder / "1_small.png").write_bytes(encode(np.asarray(Image.fromarray(large).resize((240, 180)))))
    (folder / "2_large.jpg").write_bytes(encode(large, "JPEG", quality=90))
    out = tmp_path / "pool"
    assert dataset_builder.main(["--out", str(out), "--no-debian", "--no-sheets", "--user-folder", str(folder)],
                                command="build-dataset") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [r["path"] for r in manifest["images"]] == ["2_large.jpg"]
    assert manifest["images"][0]["duplicates"][0]["path"] == "1_small.png"
    assert [p.name for p in (out / "images").iterdir()] == [manifest["images"][0]["file"].split("/")[1]]


# ---- fetching (no network: apt-get is replaced) ------------------------------------------------

def test_cached_deb_is_used_without_apt_get(tmp_path, monkeypatch):
    from training import sources
    (tmp_path / "hugin-data_2022.0.0+dfsg-2_all.deb").write_bytes(b"!<arch>\n")
    monkeypatch.setattr(sources.subprocess, "run", lambda *a, **k: pytest.fail("apt-get must not run"))
    assert sources.find_or_download_deb("hugin-data", tmp_path).name == "hugin-data_2022.0.0+dfsg-2_all.deb"


def test_failed_apt_get_download_is_a_clear_error(tmp_path, monkeypatch):
    from training import sources

    def fake_run(cmd, **kwargs):
        assert cmd[:2] == ["apt-get", "download"] and kwargs["cwd"] == tmp_path
        raise sources.subprocess.CalledProcessError(100, cmd, stderr="E: Unable to locate package nope")

    monkeypatch.setattr(sources.subprocess, "run", fake_run)
    with pytest.raises(sources.SourceError, match="apt-get download nope failed.*Unable to locate"):
        sources.find_or_download_deb("nope", tmp_path)
