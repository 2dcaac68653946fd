import io

import numpy as np
import pytest
from PIL import Image

from gimp_colorize import imageio
from gimp_colorize.errors import ImageTooLarge, InvalidImage

RNG = np.random.default_rng(0)


def _encode(array: np.ndarray, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", sorted(imageio.RAW_FORMATS))
def test_raw_round_trip_every_format(fmt):
    channels, dtype = imageio.RAW_FORMATS[fmt]
    shape = (3, 5) if channels == 1 else (3, 5, channels)
    if dtype.kind == "f":
        pixels = RNG.random(shape, dtype=np.float32)
    else:
        pixels = RNG.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    data = pixels.astype(dtype.newbyteorder("<")).tobytes()
    assert len(data) == imageio.raw_byte_length(5, 3, fmt)
    decoded = imageio.decode_raw(bytearray(data), 5, 3, fmt)
    assert decoded.shape == shape
    np.testing.assert_array_equal(decoded, pixels)


def test_raw_is_a_view_of_the_body():
    body = bytearray(range(12))
    decoded = imageio.decode_raw(body, 2, 2, "rgb8")
    body[0] = 99
    assert decoded[0, 0, 0] == 99  # no copy of a possibly 1 GB body


def test_raw_wrong_length_and_format():
    with pytest.raises(InvalidImage, match="must be 12 bytes, got 11"):
        imageio.decode_raw(b"\0" * 11, 2, 2, "rgb8")
    with pytest.raises(InvalidImage, match="unknown raw format 'rgb12'"):
        imageio.decode_raw(b"\0" * 12, 2, 2, "rgb12")
    with pytest.raises(InvalidImage, match="positive"):
        imageio.decode_raw(b"", 0, 2, "gray8")


def test_raw_16_bit_is_little_endian():
    decoded = imageio.decode_raw(b"\x01\x02", 1, 1, "gray16")
    assert decoded[0, 0] == 0x0201


@pytest.mark.parametrize("dtype,fmt", [(np.uint8, "rgb8"), (np.uint16, "rgb16"), (np.float32, "rgbf32")])
def test_encode_raw_round_trip(dtype, fmt):
    pixels = (RNG.random((4, 6, 3)) * (255 if dtype == np.uint8 else 65535 if dtype == np.uint16 else 1)).astype(dtype)
    assert imageio.raw_format_for(pixels) == fmt
    data = imageio.encode_raw(pixels)
    np.testing.assert_array_equal(imageio.decode_raw(bytes(data), 6, 4, fmt), pixels)


@pytest.mark.parametrize("mode,shape", [("L", (7, 9)), ("LA", (7, 9, 2)), ("RGB", (7, 9, 3)), ("RGBA", (7, 9, 4))])
def test_decode_8_bit_png(mode, shape):
    pixels = RNG.integers(0, 256, shape).astype(np.uint8)
    decoded = imageio.decode_file(_encode(pixels, "PNG"), max_pixels=1000)
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, pixels)


def test_decode_16_bit_gray_png_and_tiff():
    pixels = RNG.integers(0, 65536, (5, 8)).astype(np.uint16)
    for fmt in ("PNG", "TIFF"):
        decoded = imageio.decode_file(_encode(pixels, fmt), max_pixels=1000)
        assert decoded.dtype == np.uint16, fmt
        np.testing.assert_array_equal(decoded, pixels)


def test_decode_float_tiff():
    pixels = RNG.random((4, 4), dtype=np.float32)
    decoded = imageio.decode_file(_encode(pixels, "TIFF"), max_pixels=1000)
    assert decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, pixels)


def test_decode_jpeg_and_palette():
    gray = np.tile(np.linspace(0, 255, 16, dtype=np.uint8), (8, 1))
    decoded = imageio.decode_file(_encode(gray, "JPEG", quality=95), max_pixels=1000)
    assert decoded.shape == (8, 16) and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - gray).max() < 12
    palette = Image.fromarray(RNG.integers(0, 256, (4, 4, 3)).astype(np.uint8)).convert("P")
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    assert imageio.decode_file(buffer.getvalue(), max_pixels=1000).shape == (4, 4, 3)


def test_exif_orientation_is_applied():
    pixels = np.zeros((2, 6), np.uint8)  # wide
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    assert imageio.decode_file(buffer.getvalue(), max_pixels=100).shape == (6, 2)


def test_corrupt_and_truncated_files():
    with pytest.raises(InvalidImage, match="cannot decode"):
        imageio.decode_file(b"definitely not an image", max_pixels=100)
    png = _encode(RNG.integers(0, 256, (64, 64)).astype(np.uint8), "PNG")
    with pytest.raises(InvalidImage):
        imageio.decode_file(png[: len(png) // 2], max_pixels=10_000)


def test_pixel_limit_checked_before_decoding():
    png = _encode(np.zeros((100, 100), np.uint8), "PNG")
    with pytest.raises(ImageTooLarge, match="100 x 100"):
        imageio.decode_file(png, max_pixels=9999)


def test_pillow_decompression_bomb_is_image_too_large(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    png = _encode(np.zeros((30, 30), np.uint8), "PNG")  # 900 > 2 x 100: Pillow alone would refuse to open it
    with pytest.raises(ImageTooLarge, match="30 x 30 .* the limit is") as caught:  # our limit decides, and says so
        imageio.decode_file(png, max_pixels=500)
    assert "decompression bomb" not in caught.value.message


@pytest.mark.parametrize("shape", [(5, 7, 3), (5, 7)])
def test_png_encoding_keeps_depth(shape):
    eight = RNG.integers(0, 256, shape).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(imageio.encode_png(eight)))), eight)
    sixteen = RNG.integers(0, 65536, shape).astype(np.uint16)
    data = imageio.encode_png(sixteen)
    assert data[24] == 16  # IHDR bit depth
    if len(shape) == 2:  # Pillow reads 16-bit gray back at full depth (colour it would reduce to 8 bits)
        np.testing.assert_array_equal(imageio.decode_file(data, 100), sixteen)
    else:
        assert Image.open(io.BytesIO(data)).size == (7, 5)


def test_16_bit_colour_png_decodes_with_an_independent_reader():
    import png  # pypng (dev extra): a pure-Python reader that keeps 16-bit colour, unlike Pillow

    sixteen = RNG.integers(0, 65536, (5, 7, 3)).astype(np.uint16)
    width, height, rows, info = png.Reader(bytes=imageio.encode_png(sixteen)).read()
    assert (width, height, info["bitdepth"], info["planes"]) == (7, 5, 16, 3)
    np.testing.assert_array_equal(np.array([list(row) for row in rows], np.uint16).reshape(5, 7, 3), sixteen)


def test_float_png_is_16_bit():
    data = imageio.encode_png(np.array([[0.0, 0.5, 1.0]], np.float32))
    np.testing.assert_array_equal(imageio.decode_file(data, 10), np.array([[0, 32768, 65535]], np.uint16))


def test_atomic_write_replaces_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    imageio.atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_atomic_write_failure_leaves_old_file(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    with pytest.raises(TypeError):
        imageio.atomic_write(target, object())  # not bytes-like: fails while writing
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_read_image_missing_file(tmp_path):
    with pytest.raises(InvalidImage, match="cannot read"):
        imageio.read_image(tmp_path / "nope.png", 100)


# -- the PNG writer: strips deflated on threads into one zlib stream, decoded by independent readers


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, body))
        offset += 12 + length
    assert chunks[-1] == (b"IEND", b"") and offset == len(data)
    return chunks


def _read_with_pypng(data: bytes) -> np.ndarray:
    import png

    width, height, rows, info = png.Reader(bytes=data).read()
    planes = info["planes"]
    array = np.array([list(row) for row in rows], np.uint16 if info["bitdepth"] == 16 else np.uint8)
    return array.reshape((height, width) if planes == 1 else (height, width, planes))


def _expected_samples(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype.kind == "f":
        wide = pixels.astype(np.promote_types(pixels.dtype, np.float32))  # float16 would overflow at 65535
        return np.round(np.clip(wide, 0, 1) * 65535).astype(np.uint16)
    return pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels


PNG_CASES = [((37, 23), np.uint8), ((37, 23, 1), np.uint8), ((37, 23, 2), np.uint8), ((37, 23, 3), np.uint8),
             ((37, 23, 4), np.uint8), ((37, 23), np.uint16), ((37, 23, 3), np.uint16), ((37, 23, 4), np.uint16),
             ((37, 23, 3), np.float32), ((37, 23), np.float64), ((37, 23, 3), np.float16)]


def _png_test_pixels(shape, dtype) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return RNG.uniform(-0.1, 1.1, shape).astype(dtype)
    return RNG.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)


@pytest.mark.parametrize("png_filter", [imageio.PNG_FILTER_NONE, imageio.PNG_FILTER_UP])
@pytest.mark.parametrize("shape,dtype", PNG_CASES)
def test_png_in_many_strips_decodes_identically_with_pypng_pillow_and_zlib(monkeypatch, shape, dtype, png_filter):
    import zlib

    monkeypatch.setattr(imageio, "PNG_FILTER", png_filter)
    monkeypatch.setattr(imageio, "PNG_STRIP_BYTES", 200)  # 1 to 8 rows per strip: 37 rows make 5 to 37 strips
    pixels = _png_test_pixels(shape, dtype)
    expected = _expected_samples(pixels)
    outputs = {threads: imageio.encode_png(pixels, threads=threads) for threads in (1, 3)}
    assert outputs[1] == outputs[3]  # strips finishing out of order change nothing
    data = outputs[3]
    chunks = _png_chunks(data)  # every chunk's CRC is right
    depth = 8 if dtype == np.uint8 else 16
    row_bytes = shape[1] * (shape[2] if len(shape) == 3 else 1) * depth // 8
    idat = [body for kind, body in chunks if kind == b"IDAT"]
    assert len(idat) == -(-shape[0] // max(1, 200 // (row_bytes + 1))) >= 5  # one IDAT chunk per strip
    scanlines = zlib.decompress(b"".join(idat))  # one zlib stream: checks its Adler-32 trailer too
    assert len(scanlines) == shape[0] * (row_bytes + 1) and set(scanlines[:: row_bytes + 1]) == {png_filter}
    np.testing.assert_array_equal(_read_with_pypng(data), expected)
    if depth == 8 or len(shape) == 2:  # Pillow keeps 16 bits for gray only (it has no 48/64-bit colour mode)
        np.testing.assert_array_equal(imageio.decode_file(data, 10**6), expected)


def test_png_of_one_strip_and_of_a_single_pixel():
    for pixels in (np.array([[7]], np.uint8), RNG.integers(0, 256, (300, 200, 3)).astype(np.uint8)):
        data = imageio.encode_png(pixels)
        assert [kind for kind, _ in _png_chunks(data)] == [b"IHDR", b"IDAT", b"IEND"]
        np.testing.assert_array_equal(imageio.decode_file(data, 10**6), pixels)


def test_png_of_a_strided_view_is_the_view_s_pixels(monkeypatch):
    monkeypatch.setattr(imageio, "PNG_STRIP_BYTES", 500)
    big = RNG.integers(0, 65536, (60, 50, 4)).astype(np.uint16)
    view = big[::2, ::3, :3]
    np.testing.assert_array_equal(_read_with_pypng(imageio.encode_png(view)), view)


def test_png_refuses_shapes_it_cannot_write():
    for pixels in (np.zeros((4, 4, 5), np.uint8), np.zeros((0, 4), np.uint8), np.zeros(4, np.uint8)):
        with pytest.raises(ValueError, match="cannot write a PNG"):
            imageio.encode_png(pixels)


def test_adler32_combine_matches_zlib():
    import zlib

    data = RNG.integers(0, 256, 300_000).astype(np.uint8).tobytes()  # longer than the modulus 65521
    for cut in (0, 1, 65521, 65522, 131_000, 299_999, 300_000):
        head, tail = data[:cut], data[cut:]
        assert imageio.adler32_combine(zlib.adler32(head), zlib.adler32(tail), len(tail)) == zlib.adler32(data)
    assert imageio.adler32_combine(zlib.adler32(b"\xff" * 5552), zlib.adler32(b"\xff" * 9000), 9000) == zlib.adler32(
        b"\xff" * 14552)
