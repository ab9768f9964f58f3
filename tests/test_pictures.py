"""Pictures for people: photos to show, thumbnails, examples, the sign chart, the outline."""

import io

import numpy as np
from PIL import Image

from signdigits.pictures import (
    CANVAS_RGB,
    display_photo,
    example_paths,
    flatten_drawing,
    palm_outline,
    sign_chart,
    thumbnail_jpeg,
    with_box,
)


def jpeg(size, color=(200, 160, 130)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


def test_a_big_photo_is_shown_at_most_display_side():
    assert max(display_photo(jpeg((4000, 3000)), 1600).size) == 1600


def test_a_thumbnail_is_a_small_jpeg():
    thumb = Image.open(io.BytesIO(thumbnail_jpeg(jpeg((400, 300)))))
    assert thumb.format == "JPEG" and max(thumb.size) == 64


def test_the_box_is_drawn_in_the_shown_pictures_scale():
    picture = Image.new("RGB", (100, 50), "white")
    framed = np.asarray(with_box(picture, (100, 40, 120, 60), (200, 100), "#FF0000"))
    assert tuple(framed[20, 50]) == (255, 0, 0) and tuple(framed[0, 0]) == (255, 255, 255)
    assert with_box(picture, None, (200, 100), "#FF0000") is picture


def test_ten_examples_and_a_chart_of_the_ten_signs():
    assert sorted(example_paths()) == list(range(10))
    assert sign_chart().size == (500, 2 * (100 + 22))


def test_a_transparent_drawing_lies_on_the_canvas_colour():
    drawing = np.zeros((10, 10, 4), np.uint8)
    drawing[2:5, 2:5] = (217, 162, 126, 255)
    flat = flatten_drawing(drawing)
    assert tuple(flat[0, 0]) == CANVAS_RGB and tuple(flat[3, 3]) == (217, 162, 126)
    assert palm_outline(360).size == (360, 360)
