"""Photos as phones take them: HEIC/HEIF files (iPhones) and very big JPEGs.

HEIC files are made here with pillow-heif from the dataset's real photos; the big JPEG is
a 64-megapixel picture made here from a hand pasted into a scene. Neither is committed.
"""

import io
import zipfile
import zlib

import numpy as np
import pillow_heif
import pytest
from PIL import Image

from signdigits import preprocess as pp
from signdigits.preprocess import DECODE_SIDE, UnreadableImageError, decode, limits_text, open_image
from signdigits.scenes import background, hand_mask, paste_hand
from signdigits.sources import iter_paths, iter_uploads

#: A 64-megapixel phone photo (Samsung, Xiaomi, Pixel main cameras at full resolution).
PHONE_SIZE = (9248, 6936)


def heic_bytes(image: Image.Image, quality: int = 90) -> bytes:
    """``image`` encoded as HEIC (HEVC in a HEIF container), as an iPhone stores photos."""
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image.convert("RGB")).save(buffer, quality=quality)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def heic_photo(confident_photos) -> tuple[bytes, int]:
    """A real photo the bundled model reads surely, as HEIC bytes, and its digit."""
    digit, path = sorted(confident_photos.items())[len(confident_photos) // 2]
    data = heic_bytes(Image.open(path).resize((300, 300), Image.Resampling.BICUBIC))
    assert data[4:12] == b"ftypheic"  # really HEIC, not a JPEG with another name
    return data, digit


def test_a_heic_file_opens():
    data = heic_bytes(Image.new("RGB", (120, 80), (200, 150, 120)))
    image = open_image(data, draft=("RGB", 64))
    assert image.size == (120, 80)
    assert image.getpixel((60, 40)) == pytest.approx((200, 150, 120), abs=6)


def test_a_heic_photo_is_read_like_its_jpeg(classifier, heic_photo):
    data, digit = heic_photo
    prediction = classifier.predict(data, name="IMG_0001.HEIC")
    assert prediction.ok, prediction.error
    assert prediction.digit == digit


def test_heic_files_in_a_batch_folder_zip_and_upload(classifier, heic_photo, tmp_path):
    data, digit = heic_photo
    (tmp_path / "IMG_0001.HEIC").write_bytes(data)
    (tmp_path / "IMG_0002.heif").write_bytes(data)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("phone/IMG_0003.heic", data)
    uploads = [("IMG_0004.heic", data), ("photos.zip", archive.getvalue())]
    items = [*iter_paths([tmp_path]), *iter_uploads(uploads)]
    predictions = list(classifier.predict_many(items))
    assert [p.name.rsplit("/", 1)[-1] for p in predictions] == [
        "IMG_0001.HEIC", "IMG_0002.heif", "IMG_0004.heic", "IMG_0003.heic"]  # fmt: skip
    assert all(p.ok and p.digit == digit for p in predictions), predictions


def test_every_refused_upload_is_an_error_row(classifier, heic_photo):
    """A file of a type we do not read, or over the size limit, is a row with its reason:
    nothing vanishes from a batch."""
    data, digit = heic_photo
    too_big = b"\xff\xd8\xff" + bytes(pp.MAX_FILE_BYTES)
    uploads = [("IMG_0001.HEIC", data), ("notes.txt", b"not a photo\n"), ("clip.mov", b"\x00" * 64),
               ("huge.jpg", too_big)]  # fmt: skip
    predictions = list(classifier.predict_many(iter_uploads(uploads)))
    assert [p.name for p in predictions] == [name for name, _ in uploads]
    assert predictions[0].digit == digit
    assert "not a supported image" in predictions[1].error and "HEIC" in predictions[1].error
    assert "not a supported image" in predictions[2].error
    assert predictions[3].error == f"file is larger than {pp.MAX_FILE_BYTES // 2**20} MB"


@pytest.fixture(scope="module")
def phone_jpeg(classifier, photo_paths, tmp_path_factory):
    """A 64-megapixel JPEG of a hand in a room, and the digit read from its 640x480 frame."""
    rng = np.random.default_rng(3)
    for path in photo_paths[5::80]:
        photo = np.asarray(Image.open(path).convert("RGB").resize((100, 100)))
        frame, _ = paste_hand(background(rng, (640, 480), "natural", "eval"), photo,
                              hand_mask(photo), 0.5 * 480, (320, 240))  # fmt: skip
        prediction = classifier.predict(frame)
        if prediction.digit == int(path.parent.name) and prediction.confidence >= 0.8:
            break
    else:
        pytest.skip("no candidate frame was read surely enough by the bundled model")
    big = tmp_path_factory.mktemp("phone") / "PXL_0001.jpg"
    Image.fromarray(frame).resize(PHONE_SIZE, Image.Resampling.BILINEAR).save(big, quality=85)
    return big, prediction.digit


@pytest.mark.slow
def test_a_64_megapixel_jpeg_is_decoded_at_reduced_scale(phone_jpeg):
    path, _ = phone_jpeg
    with Image.open(path) as header:
        assert header.size == PHONE_SIZE and header.size[0] * header.size[1] > pp.MAX_PIXELS
    drafted = open_image(path, draft=("RGB", DECODE_SIDE))
    assert drafted.size == (PHONE_SIZE[0] // 8, PHONE_SIZE[1] // 8)  # libjpeg's 1/8 scale
    assert decode(path).size == (2 * DECODE_SIDE, 2 * DECODE_SIDE * 3 // 4)
    shown = open_image(path, draft=("RGB", 1600))  # the app's picture to show
    assert shown.size == (PHONE_SIZE[0] // 4, PHONE_SIZE[1] // 4)


@pytest.mark.slow
def test_a_64_megapixel_jpeg_is_read_right(classifier, phone_jpeg):
    path, digit = phone_jpeg
    prediction = classifier.predict(path)
    assert prediction.ok, prediction.error
    assert prediction.digit == digit


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG whose header (SOF0) claims ``width`` x ``height``."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "white").save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    at = data.index(b"\xff\xc0") + 5  # marker, length (2), precision (1): then height, width
    data[at : at + 4] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def test_a_jpeg_over_the_jpeg_limit_is_refused_before_decoding():
    with pytest.raises(UnreadableImageError, match="too large.*megapixels"):
        open_image(jpeg_declaring(20_000, 10_000))  # 200 MP


def test_a_png_of_phone_size_is_still_refused():
    """Only JPEGs can be decoded at reduced scale; other formats keep the pixel limit."""
    buffer = io.BytesIO()
    Image.new("L", (16, 16)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = PHONE_SIZE[0].to_bytes(4, "big") + PHONE_SIZE[1].to_bytes(4, "big")  # IHDR
    data[29:33] = zlib.crc32(data[12:29]).to_bytes(4, "big")  # the chunk's checksum
    with pytest.raises(UnreadableImageError, match="too large"):
        open_image(bytes(data))


def test_the_limits_in_words_are_the_limits():
    text = limits_text()
    assert f"{pp.MAX_FILE_BYTES // 2**20} MB" in text
    assert f"{pp.MAX_JPEG_PIXELS // 10**6} megapixels" in text
    assert f"{pp.MAX_PIXELS // 10**6} megapixels" in text
