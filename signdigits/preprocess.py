"""The one preprocessing path: any image a person may hand us -> the 64x64 model input.

Dataset building (whose arrays training reads), the app and the CLI all call
:func:`preprocess`, so the model always sees pictures prepared exactly the way it was
trained on.

The model input follows the Kaggle convention of the dataset: float32, shape 64x64,
values ``1 - gray/255`` (a white background is 0, dark pixels approach 1).
"""

import io
import stat
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from signdigits import IMAGE_SIZE

#: Formats we decode. Anything else (EPS, PSD, SVG, ...) is refused before decoding.
#: (Multi-picture JPEGs, format "MPO", are opened by the JPEG plugin: Pillow registers no
#: separate opener for MPO, and naming it here would make ``Image.open`` fail on every
#: non-JPEG.)
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
#: Largest image we decode, in pixels (a larger one is refused before it is decoded).
MAX_PIXELS = 50_000_000
#: Largest encoded file we read, in bytes.
MAX_FILE_BYTES = 50 * 1024 * 1024


class UnreadableImageError(ValueError):
    """The input is not an image we can read. The message is meant for people."""


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


def open_image(source, draft=("L", IMAGE_SIZE)) -> Image.Image:
    """Decode ``source`` (path, bytes, file-like, PIL image or array) into a PIL image.

    The image is fully loaded, its EXIF orientation applied. JPEGs are decoded by libjpeg
    straight to ``draft = (mode, size)``, at least ``size`` pixels a side: small and gray
    for the model by default; ``("RGB", 1600)`` gives a picture to show or crop. Raises
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
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise UnreadableImageError(
                f"image is too large ({width}x{height} pixels; the limit is {MAX_PIXELS:,})"
            )
        if image.format in ("JPEG", "MPO") and image.mode in ("RGB", "L"):
            image.draft(draft[0], (draft[1], draft[1]))  # let libjpeg downscale big photos
        image.seek(0)  # first frame of animations
        image.load()
    except UnreadableImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise UnreadableImageError("image is too large (decompression bomb)") from exc
    except Image.UnidentifiedImageError as exc:
        raise UnreadableImageError(
            "not a supported image (JPEG, PNG, WebP, BMP, GIF or TIFF)"
        ) from exc
    except Exception as exc:  # any decoder failure on untrusted bytes is 'unreadable'
        raise UnreadableImageError(f"image data is corrupt or truncated ({exc})") from exc
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not cost the picture
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
    """Any image source -> float32 array (64, 64) with values ``1 - gray/255``.

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
    return 1.0 - np.asarray(gray, dtype=np.float32) / 255.0


def model_input_to_image(model_input: np.ndarray) -> Image.Image:
    """The 64x64 model input as a viewable grayscale picture (the inverse mapping)."""
    gray = np.clip((1.0 - np.asarray(model_input, dtype=np.float32)) * 255.0, 0, 255)
    return Image.fromarray(np.rint(gray).astype(np.uint8))
