"""Pictures for people to look at: photos to show and crop, thumbnails, the hand's box,
the example photos, the chart of the ten signs, the palm outline to draw over.

Plain Pillow, no Streamlit: the app's pages call these; the model never sees them.
"""

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from signdigits import NUM_CLASSES, PACKAGE_DIR
from signdigits.preprocess import open_image, to_grayscale

#: Photos are decoded at most this large for showing and cropping (JPEGs by libjpeg's
#: reduced-scale decoding, so a 64-megapixel phone photo is never decoded whole).
DISPLAY_SIDE = 1600
THUMBNAIL_SIDE = 64
THUMBNAIL_QUALITY = 75
#: Ten example photos, one per digit (``examples/CREDITS.md``), in a source checkout.
EXAMPLES_DIR = PACKAGE_DIR.parent / "examples"
CHART_TILE = 100
CHART_LABEL = 22
CANVAS_RGB = (242, 242, 240)  # light, like the wall behind the dataset's hands
SKIN_RGB = (217, 162, 126)  # the drawing canvas's brush and fill: a hand-like tone
OUTLINE_RGB = (205, 205, 200)  # faint on CANVAS_RGB


def display_photo(data, side: int = DISPLAY_SIDE) -> Image.Image:
    """An RGB picture of at most ``side`` pixels, EXIF applied, for showing and cropping.
    Raises :class:`signdigits.preprocess.UnreadableImageError`."""
    image = open_image(data, draft=("RGB", side))
    image.thumbnail((side, side))
    if image.mode in ("I", "F") or image.mode.startswith("I;") or "A" in image.getbands():
        image = to_grayscale(image)  # 16-bit and transparent pictures, as the model sees them
    return image.convert("RGB")


def thumbnail_jpeg(data, side: int = THUMBNAIL_SIDE) -> bytes:
    """A small JPEG of an image source, for tables. Raises like :func:`display_photo`."""
    buffer = io.BytesIO()
    display_photo(data, side).save(buffer, "JPEG", quality=THUMBNAIL_QUALITY)
    return buffer.getvalue()


def with_box(picture: Image.Image, box, picture_size, color: str) -> Image.Image:
    """``picture`` with ``box`` (x0, y0, x1, y1 in a ``picture_size`` picture) drawn on it."""
    if box is None:
        return picture
    scale = picture.width / picture_size[0]
    framed = picture.copy()
    line = max(2, round(max(picture.size) / 200))
    ImageDraw.Draw(framed).rectangle([v * scale for v in box], outline=color, width=line)
    return framed


def example_paths() -> dict[int, Path]:
    """digit -> its example photo, for the digits that have one."""
    found = {d: EXAMPLES_DIR / f"{d}.jpg" for d in range(NUM_CLASSES)}
    return {d: path for d, path in found.items() if path.is_file()}


def sign_chart(columns: int = 5) -> Image.Image:
    """The ten signs in a grid, each example photo under its digit."""
    paths = example_paths()
    rows = -(-len(paths) // columns)
    chart = Image.new("RGB", (columns * CHART_TILE, rows * (CHART_TILE + CHART_LABEL)), "white")
    draw = ImageDraw.Draw(chart)
    font = ImageFont.load_default(size=CHART_LABEL - 4)
    for i, (digit, path) in enumerate(sorted(paths.items())):
        x, y = (i % columns) * CHART_TILE, (i // columns) * (CHART_TILE + CHART_LABEL)
        draw.text((x + CHART_TILE / 2, y + CHART_LABEL / 2), str(digit), fill="black", font=font, anchor="mm")
        photo = display_photo(path.read_bytes(), CHART_TILE).resize((CHART_TILE, CHART_TILE))
        chart.paste(photo, (x, y + CHART_LABEL))
    return chart


def palm_outline(side: int) -> Image.Image:
    """A faint outline of an open palm and forearm on the canvas colour, to draw over."""
    picture = Image.new("RGB", (side, side), CANVAS_RGB)
    draw = ImageDraw.Draw(picture)
    s = side / 360  # drawn on a 360-pixel grid
    width = max(1, round(3 * s))
    draw.rounded_rectangle(
        [120 * s, 170 * s, 250 * s, 290 * s], radius=30 * s, outline=OUTLINE_RGB, width=width
    )  # palm
    draw.rectangle([140 * s, 285 * s, 230 * s, side], outline=OUTLINE_RGB, width=width)  # arm
    for left, top in [(122, 80), (155, 55), (188, 60), (221, 85)]:  # fingers
        draw.rounded_rectangle(
            [left * s, top * s, (left + 27) * s, 178 * s], radius=13 * s, outline=OUTLINE_RGB, width=width
        )
    draw.rounded_rectangle(
        [235 * s, 200 * s, 300 * s, 228 * s], radius=13 * s, outline=OUTLINE_RGB, width=width
    )  # thumb
    return picture


def flatten_drawing(rgba: np.ndarray, background=CANVAS_RGB) -> np.ndarray:
    """A canvas drawing (H, W, 4) over ``background``, as an RGB array: what a photo of it
    would show (the outline to draw over is not part of the drawing)."""
    drawing = Image.fromarray(np.asarray(rgba, np.uint8), "RGBA")
    flat = Image.new("RGB", drawing.size, background)
    flat.paste(drawing.convert("RGB"), mask=drawing.getchannel("A"))
    return np.asarray(flat)
