"""The one preprocessing path: any image a person may hand us -> the 64x64 model input.

:func:`decode` reads any image into what the hand localizer looks at (the whole picture,
LOCATOR_SIZE x LOCATOR_SIZE RGB) and a gray picture; :func:`hand_input` cuts the square around the found hand
(:data:`CROP_SCALE` times its box, the way the dataset's photos frame a hand) out of the
gray picture and scales it to 64x64, and :func:`hand_inputs` cuts it at each of the
:data:`FRAMINGS` the classifier reads. The classifier (app, CLI, benchmark, ``evaluate``)
goes through both; training makes the same crops of its photos in TensorFlow
(:mod:`signdigits.augment`). :func:`preprocess` is the whole picture as one square (the
dataset arrays' convention).

The model input follows the Kaggle convention of the dataset: float32, shape 64x64,
values ``1 - gray/255`` (a white background is 0, dark pixels approach 1).
"""

import io
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pillow_heif
import simplejpeg
from PIL import Image, ImageOps

from signdigits import IMAGE_SIZE

pillow_heif.register_heif_opener()  # iPhone photos (HEIC/HEIF) open like any other format

#: Formats we decode. Anything else (EPS, PSD, SVG, ...) is refused before decoding.
#: (Multi-picture JPEGs, format "MPO", are opened by the JPEG plugin: Pillow registers no
#: separate opener for MPO, and naming it here would make ``Image.open`` fail on every
#: non-JPEG.) "HEIF" is pillow-heif's opener, for HEIC and HEIF files.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "HEIF")
#: Largest picture we decode, in pixels (a larger one is refused before it is decoded). A
#: JPEG counts at the reduced scale libjpeg decodes it at (1/2, 1/4 or 1/8 of each side),
#: so a 64-megapixel phone photo is decoded small, never whole.
MAX_PIXELS = 50_000_000
#: Largest JPEG we open, in the pixels its header declares: Pillow's own decompression-bomb
#: limit (about 179 megapixels).
MAX_JPEG_PIXELS = 2 * Image.MAX_IMAGE_PIXELS
#: The ``Image.info`` key under which :func:`open_image` keeps the size the file declares.
FULL_SIZE = "signdigits_full_size"
#: JPEG scales libjpeg decodes at (Pillow's draft uses the same), largest first.
JPEG_SCALES = (8, 4, 2, 1)
#: How APP1 segments holding XMP begin (XMP may carry the orientation where EXIF does not).
XMP_ID = b"http://ns.adobe.com/xap/1.0/\0"
#: Largest encoded file we read, in bytes.
MAX_FILE_BYTES = 50 * 1024 * 1024
#: Side of the square picture the hand localizer looks at (RGB, the whole image squeezed).
LOCATOR_SIZE = 128
#: JPEGs are decoded at reduced scale (libjpeg draft), at least this many pixels a side:
#: enough for a 64x64 crop of a hand a fifth of the frame tall.
DECODE_SIDE = 320
#: The crop around a hand is this many times its box's longer side (a square, centred on
#: the box): the median framing of the dataset's photos.
CROP_SCALE = 1.2
#: The classifier reads each hand at these framings (shares of CROP_SCALE, the first the
#: one shown) and averages them: a box a little off costs less. Chosen on the validation
#: people (three seeds, 2 draws): plain +0.5 to +1.4 points, thin pen +1.9 to +3.4,
#: outline +0.4 to +1.9, busy and webcam-like -1.0 to +1.9; one framing and (1, 1.15),
#: (1, 0.9), (1, 0.85, 1.15), (0.9, 1, 1.1, 1.2) did less.
FRAMINGS = (1.0, 0.9, 1.1)


class UnreadableImageError(ValueError):
    """The input is not an image we can read. The message is meant for people."""


def limits_text() -> str:
    """The limits above in words, for the places where people pick files."""
    return (
        f"Up to {MAX_FILE_BYTES // 2**20} MB a photo; JPEG up to {MAX_JPEG_PIXELS // 10**6} "
        f"megapixels (read at reduced scale), other formats (PNG, HEIC, ...) up to "
        f"{MAX_PIXELS // 10**6} megapixels."
    )


def _read_bytes(source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > MAX_FILE_BYTES:
            raise UnreadableImageError(f"file is larger than {MAX_FILE_BYTES // 2**20} MB")
        return bytes(source)
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
                raise UnreadableImageError("not a regular file")
            if info.st_size > MAX_FILE_BYTES:
                raise UnreadableImageError(f"file is larger than {MAX_FILE_BYTES // 2**20} MB")
            return path.read_bytes()
        except OSError as exc:
            raise UnreadableImageError(f"cannot read file: {exc.strerror or exc}") from exc
    if hasattr(source, "read"):
        if hasattr(source, "seek"):
            source.seek(0)
        data = source.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise UnreadableImageError(f"file is larger than {MAX_FILE_BYTES // 2**20} MB")
        return data
    raise UnreadableImageError(f"unsupported input type {type(source).__name__}")


def _from_array(array) -> Image.Image:
    """A uint8 (or [0, 1] float) gray, RGB or RGBA array, e.g. a canvas drawing."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":  # strings, objects, complex numbers are no pixels
        raise UnreadableImageError(f"array of dtype {array.dtype} is not an image")
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise UnreadableImageError(f"array of shape {array.shape} is not an image")
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise UnreadableImageError("array is empty or holds NaN/inf")
    if array.dtype != np.uint8:
        scale = 255.0 if array.max(initial=0) <= 1.0 else 1.0
        array = np.clip(array * scale, 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return Image.fromarray(array)


def _too_large(width: int, height: int) -> UnreadableImageError:
    return UnreadableImageError(f"image is too large ({width}x{height} pixels; the limit is {MAX_PIXELS:,})")


def _jpeg_metadata(data: bytes) -> dict:
    """The EXIF and XMP blocks of a JPEG (its APP1 segments before the first scan), under
    the ``Image.info`` keys Pillow's JPEG reader uses, so that the orientation is found."""
    info, at = {}, 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xDA:  # start of scan: no metadata follows
            break
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:  # fill, standalone
            at += 1 if marker == 0xFF else 2
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        segment = data[at + 4 : at + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\0\0"):
            info.setdefault("exif", segment)
        elif marker == 0xE1 and segment.startswith(XMP_ID):
            info.setdefault("xmp", segment[len(XMP_ID) :])
        at += 2 + max(length, 2)
    return info


def _open_jpeg(data: bytes, draft) -> Image.Image | None:
    """A JPEG decoded by libjpeg-turbo (simplejpeg) straight to the draft's mode and
    reduced scale, the same pixels as Pillow's draft in half the time here; None where it
    does not apply (not a JPEG, or one it refuses, such as stray bytes before the end
    marker, which libjpeg only warns of): Pillow decodes those."""
    if not data.startswith(b"\xff\xd8"):
        return None
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    if width * height > MAX_JPEG_PIXELS:
        raise UnreadableImageError(f"image is too large (over {MAX_JPEG_PIXELS // 10**6} megapixels)")
    fits = min(width // draft[1], height // draft[1])
    scale = next(s for s in JPEG_SCALES if s <= max(fits, 1))
    size = (-(-width // scale), -(-height // scale))  # libjpeg rounds up
    if size[0] * size[1] > MAX_PIXELS:
        raise _too_large(width, height)
    gray = draft[0] == "L"
    try:
        pixels = simplejpeg.decode_jpeg(data, "GRAY" if gray else "RGB", min_height=size[1], min_width=size[0])
    except ValueError:
        return None
    image = Image.fromarray(pixels[..., 0] if gray else pixels)
    image.info.update(_jpeg_metadata(data), **{FULL_SIZE: (width, height)})
    return image


def open_image(source, draft=("L", IMAGE_SIZE)) -> Image.Image:
    """Decode ``source`` (path, bytes, file-like, PIL image or array) into a PIL image.

    The image is fully loaded, its EXIF orientation applied. JPEGs are decoded by libjpeg
    straight to ``draft = (mode, size)``, at least ``size`` pixels a side: small and gray
    for the model by default; ``("RGB", 1600)`` gives a picture to show or crop. HEIC/HEIF
    photos (pillow-heif) are decoded whole, within :data:`MAX_PIXELS`. Raises
    :class:`UnreadableImageError` with a plain-language reason on any failure.
    """
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source)
    data = _read_bytes(source)
    if not data:
        raise UnreadableImageError("file is empty")
    try:
        image = _open_jpeg(data, draft) or _open_with_pillow(data, draft)
    except UnreadableImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise UnreadableImageError(f"image is too large (over {MAX_JPEG_PIXELS // 10**6} megapixels)") from exc
    except Image.UnidentifiedImageError as exc:
        raise UnreadableImageError("not a supported image (JPEG, PNG, WebP, HEIC, BMP, GIF or TIFF)") from exc
    except Exception as exc:  # any decoder failure on untrusted bytes is 'unreadable'
        raise UnreadableImageError(f"image data is corrupt or truncated ({exc})") from exc
    try:
        ImageOps.exif_transpose(image, in_place=True)  # no copy where it needs no turn
    except Exception:  # a broken EXIF block must not cost the picture
        pass
    return image


def _open_with_pillow(data: bytes, draft) -> Image.Image:
    image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    image.info[FULL_SIZE] = image.size  # before libjpeg's reduced scale: the file's pixels
    width, height = image.size
    if image.format in ("JPEG", "MPO"):
        image.draft(draft[0], (draft[1], draft[1]))  # libjpeg decodes big photos scaled down
    if image.width * image.height > MAX_PIXELS:  # checked before decoding
        raise _too_large(width, height)
    image.seek(0)  # first frame of animations
    image.load()
    return image


def _high_bit_depth_to_gray(image: Image.Image) -> Image.Image:
    # In place and in the image's own dtype: through float64 temporaries, a tiny 16-bit PNG
    # declaring just under MAX_PIXELS would cost gigabytes.
    array = np.array(image)
    if image.mode == "F":
        if array.size and np.nanmax(array) <= 1.0:
            array *= 255.0
        np.nan_to_num(array, copy=False, nan=255.0)
    elif image.mode.startswith("I;16") or array.max(initial=0) > 255:
        np.clip(array, 0, 65535, out=array)
        array //= 257  # the 16-bit range onto 8 bits
    np.clip(array, 0, 255, out=array)
    return Image.fromarray(array.astype(np.uint8))


def to_grayscale(image: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit gray ('L'); transparency is composited onto white."""
    if image.mode == "L":
        return image
    if image.mode in ("I", "F") or image.mode.startswith("I;"):
        return _high_bit_depth_to_gray(image)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBa", "La"):  # premultiplied alpha
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        white = Image.new("L", image.size, 255)  # composited in 8-bit gray: no big RGBA copy
        white.paste(image.convert("L"), mask=image.getchannel("A"))
        return white
    if image.mode not in ("RGB", "1"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ...
    return image.convert("L")


def to_square_thumbnail(gray: Image.Image, size: int = IMAGE_SIZE) -> Image.Image:
    """Fit ``gray`` into a ``size`` x ``size`` square, keeping its aspect ratio.

    The margin is filled with the median of the picture's border, so a photo of a hand
    on a light wall keeps a light, seamless background.
    """
    width, height = gray.size
    scale = size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = gray.resize(new_size, Image.Resampling.BILINEAR, reducing_gap=3.0)
    if new_size == (size, size):
        return resized
    pixels = np.asarray(resized)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    square = Image.new("L", (size, size), int(np.median(border)))
    square.paste(resized, ((size - new_size[0]) // 2, (size - new_size[1]) // 2))
    return square


def preprocess(source) -> np.ndarray:
    """Any image source -> float32 array (64, 64) with values ``1 - gray/255``: the whole
    picture fitted into the square (the convention of the dataset arrays).

    ``source`` may be a path, bytes, a file-like object (e.g. a Streamlit upload), a PIL
    image or a numpy array (e.g. a canvas drawing). Raises :class:`UnreadableImageError`.
    """
    image = open_image(source)
    if image.width < 1 or image.height < 1:
        raise UnreadableImageError("image has no pixels")
    try:
        gray = to_square_thumbnail(to_grayscale(image))
    except Exception as exc:
        raise UnreadableImageError(f"image could not be converted ({exc})") from exc
    return _as_model_input(gray)


def _as_model_input(gray: Image.Image) -> np.ndarray:
    return 1.0 - np.asarray(gray, dtype=np.float32) / 255.0


@dataclass(frozen=True)
class Decoded:
    """A decoded picture: ``gray`` to crop from, ``locator_input`` (LOCATOR_SIZE, LOCATOR_SIZE, 3) in [0, 1],
    the ``rgb`` picture the localizer's closer looks are cut from, and ``scale``: the file's
    pixels per decoded pixel (big photos are decoded smaller)."""

    gray: Image.Image
    locator_input: np.ndarray
    rgb: Image.Image | None = None
    scale: float = 1.0

    @property
    def size(self) -> tuple[int, int]:
        return self.gray.size


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB; transparency is composited onto white, deep gray kept gray."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "F", "L", "1") or image.mode.startswith("I;"):
        return to_grayscale(image).convert("RGB")
    if image.mode in ("P", "RGBa", "La", "LA", "PA"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        white = Image.new("RGB", image.size, (255, 255, 255))
        white.paste(image.convert("RGB"), mask=image.getchannel("A"))
        return white
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, ...


def decode(source) -> Decoded:
    """Any image source -> :class:`Decoded`. Raises :class:`UnreadableImageError`."""
    image = open_image(source, draft=("RGB", DECODE_SIDE))
    if image.width < 1 or image.height < 1:
        raise UnreadableImageError("image has no pixels")
    try:
        rgb = to_rgb(image)
        if max(rgb.size) > 2 * DECODE_SIDE:  # what draft could not shrink (PNG, ...)
            rgb = rgb.copy() if rgb is image else rgb
            rgb.thumbnail((2 * DECODE_SIDE, 2 * DECODE_SIDE), Image.Resampling.BILINEAR)
        small = rgb.resize((LOCATOR_SIZE, LOCATOR_SIZE), Image.Resampling.BILINEAR, reducing_gap=3.0)
        gray = rgb.convert("L")
    except Exception as exc:
        raise UnreadableImageError(f"image could not be converted ({exc})") from exc
    scale = max(image.info.get(FULL_SIZE, rgb.size)) / max(rgb.size)  # turned by EXIF or not
    return Decoded(gray, np.asarray(small, dtype=np.float32) / 255.0, rgb, scale)


def crop_square(box, scale: float = CROP_SCALE) -> tuple[float, float, float, float]:
    """The square ``scale`` times the longer side of ``box`` (x0, y0, x1, y1), same centre."""
    x0, y0, x1, y1 = box
    half = scale * max(x1 - x0, y1 - y0, 1.0) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (cx - half, cy - half, cx + half, cy + half)


def hand_input(gray: Image.Image, box, scale: float = CROP_SCALE) -> np.ndarray:
    """The model input for the hand in ``box`` of ``gray``: its square crop, ``scale`` times
    the box's longer side (beyond the picture's edge filled with the median of its border),
    at 64x64, ``1 - gray/255``."""
    return _square_crop(gray, box, scale, _border_median(gray))


def hand_inputs(gray: Image.Image, box) -> np.ndarray:
    """The hand in ``box`` of ``gray`` at each of the :data:`FRAMINGS`: (len(FRAMINGS), 64, 64)."""
    fill = _border_median(gray)
    return np.stack([_square_crop(gray, box, CROP_SCALE * framing, fill) for framing in FRAMINGS])


def _border_median(gray: Image.Image) -> int:
    pixels = np.asarray(gray)
    return int(np.median(np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])))


def _square_crop(gray: Image.Image, box, scale: float, fill: int) -> np.ndarray:
    """:func:`hand_input` with the fill beyond the picture's edge given."""
    x0, y0, x1, y1 = crop_square(box, scale)
    inside = (max(0, int(x0)), max(0, int(y0)), min(gray.width, int(np.ceil(x1))),
              min(gray.height, int(np.ceil(y1))))  # fmt: skip
    if inside[0] >= inside[2] or inside[1] >= inside[3]:
        return _as_model_input(Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 255))
    zoom = IMAGE_SIZE / (x1 - x0)
    part = gray.crop(inside)
    size = (max(1, round(part.width * zoom)), max(1, round(part.height * zoom)))
    part = part.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
    square = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), fill)
    square.paste(part, (round((inside[0] - x0) * zoom), round((inside[1] - y0) * zoom)))
    return _as_model_input(square)


def model_input_to_image(model_input: np.ndarray) -> Image.Image:
    """The 64x64 model input as a viewable grayscale picture (the inverse mapping)."""
    gray = np.clip((1.0 - np.asarray(model_input, dtype=np.float32)) * 255.0, 0, 255)
    return Image.fromarray(np.rint(gray).astype(np.uint8))
