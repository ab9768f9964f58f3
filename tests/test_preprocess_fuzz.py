"""Fuzzing preprocess(): whatever the bytes, the answer is a model input or UnreadableImageError.

Thousands of cases in all, a fixed number: hypothesis with a fixed number of examples and
no database, plus seeded byte mutations and truncations of real photos from ../shared
(skipped without them) and of generated images (always run). A case that hangs fails
through the test timeout; no case is held to a wall-clock limit.
"""

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from signdigits import preprocess as pp
from signdigits.preprocess import LOCATOR_SIZE, UnreadableImageError, decode, hand_input, preprocess

pytestmark = [
    pytest.mark.timeout(120),
    # Pillow warns about the damage it copes with (corrupt EXIF, truncated tags): expected here
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
]


@pytest.fixture(autouse=True)
def small_pixel_limit(monkeypatch):
    """Mutated headers often declare huge sizes. Up to MAX_PIXELS (50 megapixels) a picture
    is legitimately decoded, which takes seconds; with the limit at 4 MP each case stays
    cheap and the refusal path is exercised often. test_preprocess.py tests the real limit."""
    monkeypatch.setattr(pp, "MAX_PIXELS", 4_000_000)


FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def assert_model_input(result, label):
    assert isinstance(result, np.ndarray), label
    assert result.shape == (64, 64) and result.dtype == np.float32, label
    assert np.all(np.isfinite(result)), label
    assert result.min() >= 0.0 and result.max() <= 1.0, label


def hand_path(source):
    """The run-time path short of the models: decode, then a crop around a box."""
    decoded = decode(source)
    assert decoded.locator_input.shape == (LOCATOR_SIZE, LOCATOR_SIZE, 3)
    assert decoded.locator_input.min() >= 0.0 and decoded.locator_input.max() <= 1.0
    width, height = decoded.size
    return hand_input(decoded.gray, (width * 0.2, height * 0.1, width * 0.9, height * 1.1))


def outcome(source, label="") -> str:
    """'ok' or 'unreadable' for both paths (the dataset's whole-picture square and the
    run-time decode and crop), which must agree; fails the test on any other exception
    or a bad output."""
    kinds = []
    for path in (preprocess, hand_path):
        try:
            result = path(source.copy() if isinstance(source, np.ndarray) else source)
        except UnreadableImageError as exc:
            assert str(exc), f"{label}: empty error message"
            kinds.append("unreadable")
        except Exception as exc:  # noqa: BLE001 - that is the point of the test
            pytest.fail(f"{label}: {path.__name__} raised {type(exc).__name__}: {exc}")
        else:
            assert_model_input(result, label)
            kinds.append("ok")
        if hasattr(source, "seek"):
            source.seek(0)
    assert kinds[0] == kinds[1], f"{label}: {kinds}"
    return kinds[0]


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One random mutation: flip bytes, overwrite a run, truncate, duplicate or drop a block."""
    data = bytearray(data)
    kind = rng.integers(6)
    if kind == 0:  # flip a few bytes
        for _ in range(rng.integers(1, 9)):
            data[rng.integers(len(data))] ^= int(rng.integers(1, 256))
    elif kind == 1:  # overwrite a run with interesting values
        start = int(rng.integers(len(data)))
        value = [0x00, 0xFF, 0x7F, 0x80][rng.integers(4)]
        data[start : start + int(rng.integers(1, 32))] = bytes([value]) * int(rng.integers(1, 32))
    elif kind == 2:  # truncate
        data = data[: int(rng.integers(len(data)))]
    elif kind == 3:  # duplicate a block
        start = int(rng.integers(len(data)))
        block = data[start : start + int(rng.integers(1, 256))]
        at = int(rng.integers(len(data)))
        data[at:at] = block
    elif kind == 4:  # drop a block
        start = int(rng.integers(len(data)))
        del data[start : start + int(rng.integers(1, 256))]
    else:  # header damage: the first 64 bytes are where sizes and markers live
        for _ in range(rng.integers(1, 4)):
            data[rng.integers(min(64, len(data)))] = int(rng.integers(256))
    return bytes(data)


def png_chunks(data: bytes):
    position, chunks = 8, []
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        chunks.append((kind, data[position + 8 : position + 8 + length]))
        position += 12 + length
    return chunks


def png_from_chunks(chunks) -> bytes:
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in chunks:
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return out


def mutate_png_keeping_crcs(data: bytes, rng: np.random.Generator) -> bytes:
    """Damage one chunk's body (header, palette, pixels) and write valid CRCs, to get past them."""
    chunks = png_chunks(data)
    index = int(rng.integers(len(chunks)))
    kind, body = chunks[index]
    body = bytearray(body)
    if kind == b"IDAT" and rng.integers(2):  # damage the pixels, not the zlib stream
        raw = bytearray(zlib.decompress(bytes(body)))
        for _ in range(rng.integers(1, 20)):
            raw[rng.integers(len(raw))] = int(rng.integers(256))
        body = bytearray(zlib.compress(bytes(raw)))
    elif body:
        for _ in range(rng.integers(1, 4)):
            body[rng.integers(len(body))] = int(rng.integers(256))
    chunks[index] = (kind, bytes(body))
    return png_from_chunks(chunks)


def generated_seeds() -> dict[str, bytes]:
    """Small generated images of every allowed format (used with or without ../shared)."""
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6
    return {
        "jpeg": encode(image, "JPEG", quality=80, exif=exif),
        "progressive.jpeg": encode(image, "JPEG", progressive=True),
        "cmyk.jpeg": encode(image.convert("CMYK"), "JPEG"),
        "png": encode(image, "PNG"),
        "rgba.png": encode(image.convert("RGBA"), "PNG"),
        "p.png": encode(image.convert("P"), "PNG", transparency=3),
        "16bit.png": encode(Image.fromarray(pixels[..., 0].astype(np.uint16) * 257), "PNG"),
        "gif": encode(image.convert("P"), "GIF"),
        "bmp": encode(image, "BMP"),
        "webp": encode(image, "WEBP", quality=70),
        "tiff": encode(image, "TIFF", compression="tiff_deflate"),
    }


# ----------------------------------------------------------------------------- hypothesis


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(data):
    outcome(data, repr(data[:40]))


MAGIC = [
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    b"\xff\xd8\xff\xdb",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"GIF87a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"RIFF\x00\x01\x00\x00WEBPVP8 ",
    b"RIFF\x00\x01\x00\x00WEBPVP8L",
    b"<?xml version='1.0'?><svg",
    b"%!PS-Adobe-3.0 EPSF-3.0",
]


@FUZZ
@given(st.sampled_from(MAGIC), st.binary(max_size=2048))
def test_format_magic_with_random_tail(magic, tail):
    outcome(magic + tail, repr((magic + tail)[:40]))


@FUZZ
@given(
    st.sampled_from(["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"]),
    st.sampled_from(["L", "RGB", "RGBA", "LA", "P", "1", "CMYK", "I", "I;16", "F"]),
    st.integers(1, 80),
    st.integers(1, 80),
    st.integers(0, 2**32 - 1),
    st.sampled_from([None, 1, 3, 6, 8]),
)
def test_valid_images_always_decode(fmt, mode, width, height, seed, orientation):
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)
    params = {}
    if orientation and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        exif = Image.Exif()
        exif[0x0112] = orientation
        params["exif"] = exif
    try:
        data = encode(image, fmt, **params)
    except (OSError, ValueError, KeyError):  # Pillow cannot write this mode in this format
        return
    assert outcome(data, f"{fmt} {mode} {width}x{height}") == "ok"


array_dtypes = st.sampled_from(
    [np.uint8, np.uint16, np.int8, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_]
)
array_shapes = st.one_of(
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=40),
    st.tuples(st.integers(0, 30), st.integers(0, 30), st.sampled_from([1, 2, 3, 4, 5])),
    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
)


@FUZZ
@given(hnp.arrays(array_dtypes, array_shapes))
def test_arbitrary_arrays(array):
    outcome(array, f"{array.dtype} {array.shape}")


_SEEDS = generated_seeds()


@FUZZ
@given(st.sampled_from(sorted(_SEEDS)), st.integers(0, 2**32 - 1))
def test_mutated_generated_images(name, seed):
    data = _SEEDS[name]
    rng = np.random.default_rng(seed)
    for _ in range(3):  # a few stacked mutations
        data = mutate(data, rng)
    outcome(data, f"{name} seed {seed}")


# ----------------------------------------------------------------------------- seeded mutations


def test_every_truncation_of_generated_images():
    counts = {"ok": 0, "unreadable": 0}
    for name, data in _SEEDS.items():
        step = max(1, len(data) // 60)
        for end in range(0, len(data), step):
            counts[outcome(data[:end], f"{name}[:{end}]")] += 1
    assert counts["unreadable"] > 0


def test_png_mutations_past_the_crc_check():
    rng = np.random.default_rng(11)
    counts = {"ok": 0, "unreadable": 0}
    for name in ("png", "rgba.png", "p.png", "16bit.png"):
        for case in range(150):
            counts[outcome(mutate_png_keeping_crcs(_SEEDS[name], rng), f"{name} #{case}")] += 1
    assert counts["ok"] > 0 and counts["unreadable"] > 0  # both paths were exercised


@pytest.fixture(scope="module")
def real_photos(photo_paths):
    """A spread of real JPEGs from ../shared, plus the same photos as PNG (made in memory)."""
    chosen = photo_paths[:: max(1, len(photo_paths) // 12)][:12]
    jpegs = [p.read_bytes() for p in chosen]
    pngs = [encode(Image.open(io.BytesIO(j)), "PNG") for j in jpegs]
    return jpegs, pngs


def test_mutated_real_jpegs(real_photos):
    jpegs, _ = real_photos
    rng = np.random.default_rng(2024)
    counts = {"ok": 0, "unreadable": 0}
    for index, data in enumerate(jpegs):
        for case in range(100):
            counts[outcome(mutate(data, rng), f"jpeg {index} #{case}")] += 1
    assert sum(counts.values()) == 100 * len(jpegs)
    assert counts["unreadable"] > 0


def test_mutated_real_pngs(real_photos):
    _, pngs = real_photos
    rng = np.random.default_rng(4202)
    for index, data in enumerate(pngs):
        for case in range(60):
            outcome(mutate(data, rng), f"png {index} #{case}")
        for case in range(40):
            outcome(mutate_png_keeping_crcs(data, rng), f"png/crc {index} #{case}")


def test_truncations_of_real_photos(real_photos):
    jpegs, pngs = real_photos
    for kind, data in (("jpeg", jpegs[0]), ("png", pngs[0])):
        for end in range(0, len(data), max(1, len(data) // 150)):
            result = outcome(data[:end], f"{kind}[:{end}]")
            if end < len(data) // 2:
                assert result == "unreadable", f"{kind} cut at {end} of {len(data)} was accepted"
