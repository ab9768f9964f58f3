"""preprocess(): every image kind a person may hand us -> float32 (64, 64) in [0, 1].

Generated images are made in tmp_path (or in memory) at run time; the real photos are
read from ../shared only by the fuzz tests, which skip without them.
"""

import io
import os
import struct
import threading
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from signdigits import preprocess as pp
from signdigits.preprocess import (
    UnreadableImageError,
    model_input_to_image,
    open_image,
    preprocess,
    to_grayscale,
)

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    pytest.mark.filterwarnings("ignore:Corrupt EXIF data"),
    pytest.mark.filterwarnings("ignore:All-NaN slice"),
]


def assert_model_input(result):
    assert isinstance(result, np.ndarray)
    assert result.shape == (64, 64)
    assert result.dtype == np.float32
    assert np.all(np.isfinite(result))
    assert result.min() >= 0.0 and result.max() <= 1.0


def asymmetric_gray(width=40, height=24) -> np.ndarray:
    """White picture, a black block top-left and a gray block bottom-right."""
    pixels = np.full((height, width), 255, np.uint8)
    pixels[2 : height // 3, 3 : width // 3] = 0
    pixels[height * 2 // 3 : height - 2, width * 3 // 4 : width - 2] = 100
    return pixels


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, mode_bytes=(8, 2)) -> bytes:
    """A tiny, valid-looking PNG whose header declares ``width`` x ``height`` pixels."""
    depth, color = mode_bytes
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    row = 1 + width * channels * depth // 8  # filter byte + pixels
    idat = zlib.compress(b"\0" * row * 4, 9)  # four complete rows, nowhere near the declared size
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(
        b"IEND", b""
    )


# ----------------------------------------------------------------------------- the convention


def test_kaggle_convention_white_is_zero_black_is_one():
    assert np.all(preprocess(Image.new("L", (100, 100), 255)) == 0.0)
    assert np.all(preprocess(Image.new("L", (100, 100), 0)) == 1.0)
    gray = preprocess(Image.new("L", (64, 64), 51))
    np.testing.assert_allclose(gray, 1 - 51 / 255, atol=1e-6)


def test_dark_pixels_stay_where_they_are():
    result = preprocess(Image.fromarray(asymmetric_gray(64, 64)))
    assert_model_input(result)
    assert result[5, 10] == pytest.approx(1.0)  # black block, top-left
    assert result[63, 63] == pytest.approx(0.0)  # white corner
    assert result[50, 55] == pytest.approx(1 - 100 / 255, abs=1e-6)  # gray block


def test_model_input_to_image_inverts_the_mapping():
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    model_input = preprocess(Image.fromarray(pixels))
    back = model_input_to_image(model_input)
    assert back.mode == "L" and back.size == (64, 64)
    np.testing.assert_array_equal(np.asarray(back), pixels)


# ----------------------------------------------------------------------------- formats and inputs


@pytest.mark.parametrize(
    "fmt, params",
    [
        ("JPEG", {"quality": 95}),
        ("PNG", {}),
        ("WEBP", {"lossless": True}),
        ("BMP", {}),
        ("GIF", {}),
        ("TIFF", {}),
    ],
)
def test_every_allowed_format_decodes(tmp_path, fmt, params):
    image = Image.fromarray(asymmetric_gray(64, 64)).convert("RGB")
    path = tmp_path / f"picture.{fmt.lower()}"
    path.write_bytes(encode(image, fmt, **params))
    result = preprocess(path)
    assert_model_input(result)
    assert result[5, 10] > 0.9 and result[63, 63] < 0.1 and 0.5 < result[50, 55] < 0.7
    # the same bytes through every kind of source give the same input
    data = path.read_bytes()
    np.testing.assert_array_equal(preprocess(str(path)), result)
    np.testing.assert_array_equal(preprocess(data), result)
    np.testing.assert_array_equal(preprocess(bytearray(data)), result)
    np.testing.assert_array_equal(preprocess(io.BytesIO(data)), result)


def test_file_like_is_read_from_its_start():
    data = encode(Image.new("L", (30, 30), 0), "PNG")
    upload = io.BytesIO(data)
    upload.read(10)  # e.g. a Streamlit upload that was peeked at
    assert np.all(preprocess(upload) == 1.0)


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.zeros((30, 30), np.uint8), 1.0),
        (np.full((30, 30, 3), 255, np.uint8), 0.0),
        (np.full((30, 30, 1), 255, np.uint8), 0.0),
        (np.zeros((30, 30, 4), np.uint8), 0.0),  # fully transparent black -> white
        (np.ones((30, 30), np.float32), 0.0),  # [0, 1] floats, e.g. a canvas
        (np.zeros((30, 30), np.float64), 1.0),
    ],
)
def test_numpy_arrays(array, expected):
    result = preprocess(array)
    assert_model_input(result)
    assert np.all(result == expected)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((0, 5), np.uint8),
        np.zeros((5,), np.uint8),
        np.zeros((5, 5, 2), np.uint8),
        np.zeros((2, 2, 2, 2), np.uint8),
        np.full((5, 5), np.nan),
        np.full((5, 5), np.inf),
        np.array([["a", "b"]]),
        np.array([[None, 1]], dtype=object),
        np.ones((5, 5), np.complex64),
    ],
    ids=["empty", "1d", "2-channels", "4d", "nan", "inf", "strings", "objects", "complex"],
)
def test_arrays_that_are_no_images_are_refused(array):
    with pytest.raises(UnreadableImageError):
        preprocess(array)


@pytest.mark.parametrize("source", [42, None, 3.5, ["a.jpg"], object()])
def test_unsupported_source_types(source):
    with pytest.raises(UnreadableImageError):
        preprocess(source)


# ----------------------------------------------------------------------------- modes


def test_rgba_transparency_is_composited_on_white():
    rgba = np.zeros((40, 40, 4), np.uint8)  # black everywhere
    rgba[:, :20, 3] = 255  # left half opaque, right half fully transparent
    result = preprocess(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert_model_input(result)
    assert np.all(result[:, :30] == 1.0)
    assert np.all(result[:, 34:] == 0.0)
    half = np.zeros((40, 40, 4), np.uint8)
    half[..., 3] = 128
    assert np.allclose(preprocess(Image.fromarray(half, "RGBA")), 128 / 255, atol=1 / 255)


def test_la_transparency_is_composited_on_white():
    image = Image.new("LA", (20, 20), (0, 0))  # black, transparent
    image.paste((0, 255), (0, 0, 10, 20))  # left half opaque black
    result = preprocess(encode(image, "PNG"))
    assert Image.open(io.BytesIO(encode(image, "PNG"))).mode == "LA"
    assert np.all(result[:, :28] == 1.0) and np.all(result[:, 36:] == 0.0)


def test_palette_png_with_transparency(tmp_path):
    image = Image.new("P", (20, 20), 0)
    image.putpalette([0, 0, 0] + [255, 255, 255] + [0, 0, 0] * 254)  # index 0 is black...
    image.paste(2, (0, 0, 10, 20))  # index 2 is black too, but opaque
    path = tmp_path / "palette.png"
    image.save(path, transparency=0)  # ...and transparent
    assert Image.open(path).mode == "P" and Image.open(path).info.get("transparency") == 0
    result = preprocess(path)
    assert np.all(result[:, :28] == 1.0) and np.all(result[:, 36:] == 0.0)


def test_palette_gif_with_transparency(tmp_path):
    image = Image.new("P", (20, 20), 0)
    image.putpalette([0, 0, 0] * 256)
    path = tmp_path / "transparent.gif"
    image.save(path, transparency=0)
    assert np.all(preprocess(path) == 0.0)


def test_cmyk_jpeg(tmp_path):
    image = Image.new("CMYK", (40, 40), (0, 0, 0, 0))  # white
    image.paste((0, 0, 0, 255), (0, 0, 20, 40))  # black left half
    path = tmp_path / "cmyk.jpg"
    image.save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    result = preprocess(path)
    assert_model_input(result)
    assert result[:, :25].mean() > 0.95 and result[:, 40:].mean() < 0.05


def test_sixteen_bit_png(tmp_path):
    pixels = np.zeros((40, 40), np.uint16)
    pixels[:, 20:] = 65535
    path = tmp_path / "deep.png"
    Image.fromarray(pixels).save(path)
    assert Image.open(path).mode.startswith("I")
    result = preprocess(path)
    assert_model_input(result)
    assert np.all(result[:, :28] == 1.0) and np.all(result[:, 36:] == 0.0)
    mid = np.full((10, 10), 32896, np.uint16)  # 128 * 257
    np.testing.assert_allclose(preprocess(Image.fromarray(mid)), 1 - 128 / 255, atol=1e-6)


def test_sixteen_bit_rgba_png_with_transparency(tmp_path):
    # Pillow cannot write 16-bit RGBA, so write the PNG by hand: 4 x 4, half transparent black.
    width = height = 4
    rows = b""
    for _ in range(height):
        row = b""
        for x in range(width):
            alpha = 65535 if x < 2 else 0
            row += struct.pack(">HHHH", 0, 0, 0, alpha)
        rows += b"\0" + row
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    data += png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b"")
    result = preprocess(data)
    assert_model_input(result)
    assert np.all(result[:, :24] == 1.0) and np.all(result[:, 40:] == 0.0)


@pytest.mark.parametrize("mode, fmt", [("1", "PNG"), ("1", "BMP"), ("I", "TIFF"), ("F", "TIFF")])
def test_other_modes(mode, fmt):
    value = {"1": 0, "I": 0, "F": 0.0}[mode]
    image = Image.new(mode, (30, 20), value)  # black
    data = encode(image, fmt)
    assert Image.open(io.BytesIO(data)).mode == mode
    result = preprocess(data)
    assert_model_input(result)
    assert result[32, 32] == 1.0


def test_float_image_with_nan_becomes_white():
    pixels = np.full((10, 10), np.nan, np.float32)
    assert np.all(preprocess(Image.fromarray(pixels, "F")) == 0.0)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV",
                                  "I", "I;16", "F", "1"])  # fmt: skip
def test_to_grayscale_handles_every_mode(mode):
    if mode in ("LAB", "HSV"):
        image = Image.new(mode, (12, 8))
    else:
        image = Image.new("RGB", (12, 8), (200, 100, 50)).convert(mode)
    assert to_grayscale(image).mode == "L"
    assert_model_input(preprocess(image))


def test_animated_gif_uses_its_first_frame(tmp_path):
    frames = [Image.new("L", (30, 30), 0), Image.new("L", (30, 30), 255), Image.new("L", (30, 30), 128)]
    path = tmp_path / "animated.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(path).n_frames == 3
    assert np.all(preprocess(path) == 1.0)
    # and the other way round: a white first frame
    frames[1].save(path, save_all=True, append_images=[frames[0]], duration=50, loop=0)
    assert np.all(preprocess(path) == 0.0)


def test_animated_webp_uses_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (30, 30), (0, 0, 0)), Image.new("RGB", (30, 30), (255, 255, 255))]
    path = tmp_path / "animated.webp"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, lossless=True)
    assert np.all(preprocess(path) == 1.0)


# ----------------------------------------------------------------------------- EXIF orientation

ORIENTATIONS = {
    1: lambda a: a,
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: lambda a: a.T,
    6: lambda a: np.rot90(a, -1),  # stored rotated: display turns it 90 degrees clockwise
    7: lambda a: np.rot90(a, 2).T,
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_exif_orientation_is_applied(orientation):
    pixels = asymmetric_gray(40, 24)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.fromarray(pixels), "PNG", exif=exif)
    expected_pixels = np.ascontiguousarray(ORIENTATIONS[orientation](pixels))
    shown = np.asarray(open_image(data))
    np.testing.assert_array_equal(shown, expected_pixels)
    np.testing.assert_array_equal(preprocess(data), preprocess(Image.fromarray(expected_pixels)))


def test_exif_rotated_jpeg_photo(tmp_path):
    pixels = asymmetric_gray(80, 48)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).convert("RGB").save(path, exif=exif, quality=98)
    result = preprocess(path)
    expected = preprocess(Image.fromarray(np.ascontiguousarray(np.rot90(pixels, -1))))
    assert np.abs(result - expected).mean() < 0.03
    # without the rotation the picture would be far off
    unrotated = preprocess(Image.fromarray(pixels))
    assert np.abs(result - unrotated).mean() > 0.1


def test_broken_exif_does_not_cost_the_picture():
    data = encode(Image.new("RGB", (20, 20), "white"), "JPEG")
    # an APP1 Exif segment whose TIFF header is garbage
    app1 = b"Exif\0\0" + b"MM\0*" + b"\xff" * 40
    broken = data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]
    result = preprocess(broken)
    assert_model_input(result)


# ----------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("size", [(1, 1), (2, 1), (1000, 10), (10, 1000), (64, 64), (65, 63)])
def test_any_size_and_aspect_ratio(size):
    image = Image.new("L", size, 0)
    result = preprocess(encode(image, "PNG"))
    assert_model_input(result)
    assert result.max() == 1.0


def test_wide_strip_on_white_keeps_a_white_margin():
    pixels = np.full((10, 1000), 255, np.uint8)
    pixels[2:8, 450:550] = 0  # a black mark in the middle
    result = preprocess(Image.fromarray(pixels))
    assert result[0].max() == 0.0 and result[-1].max() == 0.0  # the padding is white
    assert result[:, 30:34].max() > 0.3  # the mark survives


def test_big_photo(tmp_path):
    pixels = np.full((4000, 3000), 255, np.uint8)
    pixels[:2000, :1500] = 0  # black top-left quarter
    path = tmp_path / "big.jpg"
    Image.fromarray(pixels).save(path, quality=90)
    result = preprocess(path)
    assert_model_input(result)
    assert result[10, 16].min() > 0.9 and result[50, 45] < 0.1
    png = tmp_path / "big.png"
    Image.fromarray(pixels).save(png, compress_level=1)
    assert np.abs(preprocess(png) - result).mean() < 0.02


# ----------------------------------------------------------------------------- refused inputs


def test_decompression_bomb_png_is_refused(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(50_000, 50_000))
    assert path.stat().st_size < 2000  # tiny on disk...
    with pytest.raises(UnreadableImageError, match="too large"):
        preprocess(path)  # ...and refused before 2.5 gigapixels are decoded


def test_pixel_limit_is_a_patchable_constant(monkeypatch):
    data = encode(Image.new("L", (20, 20), 0), "PNG")
    assert_model_input(preprocess(data))
    monkeypatch.setattr(pp, "MAX_PIXELS", 399)
    with pytest.raises(UnreadableImageError, match="too large"):
        preprocess(data)
    with pytest.raises(UnreadableImageError, match="too large"):
        preprocess(png_declaring(30, 30))  # the header alone is enough


def test_pixel_limit_just_over_the_limit_is_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(pp, "MAX_PIXELS", 10_000_000)
    with pytest.raises(UnreadableImageError, match="too large"):
        preprocess(png_declaring(5000, 2001))


def test_sixteen_bit_png_just_under_the_pixel_limit_stays_bounded():
    """A tiny 16-bit PNG declaring just under MAX_PIXELS is decoded without big float64
    temporaries (they would take gigabytes)."""
    width = 40
    height = pp.MAX_PIXELS // width - 1
    data = png_declaring(width, height, mode_bytes=(16, 0))
    assert len(data) < 200
    tracemalloc.start()  # numpy's buffers are traced (Pillow's own image memory is not)
    try:
        result = preprocess(data)  # Pillow accepts the short, complete zlib stream: black rows
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_model_input(result)
    assert peak < 500 * 2**20, f"{peak / 2**20:.0f} MB of numpy temporaries"


def test_file_size_limit(tmp_path, monkeypatch):
    path = tmp_path / "photo.png"
    path.write_bytes(encode(Image.new("L", (50, 50), 0), "PNG"))
    monkeypatch.setattr(pp, "MAX_FILE_BYTES", 10)
    with pytest.raises(UnreadableImageError, match="larger than"):
        preprocess(path)
    with pytest.raises(UnreadableImageError, match="larger than"):
        preprocess(io.BytesIO(path.read_bytes()))


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(UnreadableImageError, match="empty"):
        preprocess(path)
    with pytest.raises(UnreadableImageError, match="empty"):
        preprocess(b"")


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a photo\n" * 20)
    with pytest.raises(UnreadableImageError, match="not a supported image"):
        preprocess(path)


def test_svg_is_refused(tmp_path):
    path = tmp_path / "drawing.svg"
    path.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
        '<rect width="64" height="64" fill="black"/></svg>'
    )
    with pytest.raises(UnreadableImageError, match="not a supported image"):
        preprocess(path)


@pytest.mark.parametrize("fmt", ["ICO", "PPM", "TGA", "PCX", "EPS"])
def test_formats_outside_the_allow_list_are_refused(fmt):
    image = Image.new("RGB", (16, 16), "black")
    data = encode(image, fmt)
    with pytest.raises(UnreadableImageError, match="not a supported image"):
        preprocess(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_truncated_images(fmt, fraction):
    pixels = np.random.default_rng(1).integers(0, 256, (80, 80, 3), dtype=np.uint8)
    data = encode(Image.fromarray(pixels), fmt)
    cut = data[: max(1, int(len(data) * fraction))]
    with pytest.raises(UnreadableImageError):
        preprocess(cut)


def test_truncated_real_jpeg(photo_paths):
    data = photo_paths[0].read_bytes()
    for fraction in (0.05, 0.3, 0.6, 0.95):
        with pytest.raises(UnreadableImageError, match="corrupt or truncated"):
            preprocess(data[: int(len(data) * fraction)])
    assert_model_input(preprocess(data))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(UnreadableImageError, match="cannot read"):
        preprocess(tmp_path / "nope.jpg")
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    with pytest.raises(UnreadableImageError):
        preprocess(folder)


def test_dangling_symlink(tmp_path):
    link = tmp_path / "gone.jpg"
    link.symlink_to(tmp_path / "missing.jpg")
    with pytest.raises(UnreadableImageError, match="cannot read"):
        preprocess(link)


def test_fifo_does_not_hang(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    outcome = []

    def run():
        try:
            preprocess(fifo)
        except UnreadableImageError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(5)
    if worker.is_alive():  # unblock the reader so the thread can end
        with open(fifo, "wb"):
            pass
        pytest.fail("preprocess blocked on a FIFO")
    assert outcome and "regular file" in str(outcome[0])


def test_a_64_megapixel_phone_jpeg_is_decoded_at_reduced_scale():
    """9248x6936 (a 64 MP phone camera): over MAX_PIXELS whole, but libjpeg's reduced-scale
    decoding (draft) never decodes it whole, so it is read."""
    photo = Image.new("RGB", (9248, 6936), (200, 160, 130))
    data = encode(photo, "JPEG")
    assert 9248 * 6936 > pp.MAX_PIXELS
    assert_model_input(preprocess(data))
    assert max(open_image(data, draft=("RGB", 1600)).size) < 9248 / 2


# ----------------------------------------------------------------------------- JPEG decoder


def _pillow_pixels(data: bytes, draft) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.draft(draft[0], (draft[1], draft[1]))
        return np.asarray(image.convert(draft[0]))


@pytest.mark.parametrize("draft", [("RGB", 320), ("L", 64), ("RGB", 1600)])
def test_real_jpegs_decode_to_pillows_pixels(photo_paths, draft):
    """libjpeg-turbo through simplejpeg gives exactly the pixels Pillow's draft gives."""
    for path in photo_paths[::40]:
        data = path.read_bytes()
        assert pp._open_jpeg(data, draft) is not None
        np.testing.assert_array_equal(np.asarray(open_image(data, draft)), _pillow_pixels(data, draft))


@pytest.mark.parametrize("size", [(4032, 3024), (640, 480), (333, 777), (1, 1)])
def test_reduced_scale_matches_pillows_draft(size):
    data = encode(Image.new("RGB", size, (180, 140, 120)), "JPEG")
    for draft in (("RGB", 320), ("L", 64)):
        shown = open_image(data, draft)
        assert shown.info[pp.FULL_SIZE] == size
        np.testing.assert_array_equal(np.asarray(shown), _pillow_pixels(data, draft))


def test_a_jpeg_simplejpeg_refuses_is_read_by_pillow():
    """Stray bytes before the end marker: libjpeg warns, strict simplejpeg refuses, Pillow
    reads it as it always did."""
    data = encode(Image.new("RGB", (20, 20), (10, 200, 30)), "JPEG")
    stray = data[:-2] + b"\0\0\0" + data[-2:]
    assert pp._open_jpeg(stray, ("RGB", 320)) is None
    assert tuple(np.asarray(open_image(stray, ("RGB", 320)))[3, 3]) == (10, 200, 30)
