"""Each of the ten signs, drawn carefully in the browser as a filled hand, is read right
or, where the model cannot tell it, marked "Not sure": at most one of the ten a wrong digit
stated as sure.

The outline of each example photo's hand (examples/, the sign chart the app shows) is
traced with the canvas's polygon tool, point by point as a person would click it, which
fills the hand in skin tone: the filled silhouettes the classifier was trained on. The
library reads the same polygons drawn by Pillow: most right, and a sign it reads wrong must
come with a confidence under the app's default threshold. The browser must give, for each
sign, the library's answer on the canvas's own pixels (the canvas strokes and smooths the
polygon's edge, unlike Pillow, which can tip a 7 drawn as a silhouette towards an 8).
"""

import contourpy
import numpy as np
import pytest
from PIL import Image, ImageDraw

from components import DEFAULT_THRESHOLD
from signdigits.pictures import CANVAS_RGB, SKIN_RGB, example_paths, flatten_drawing
from signdigits.scenes import drawing, hand_mask
from tests.e2e.conftest import DESKTOP, WAIT_MS, screenshot, settle

pytestmark = pytest.mark.e2e

CANVAS = 360
#: Corners at least this far apart: a click never lands on an earlier corner's handle
#: (radius 10), which the polygon tool would take for closing or editing.
SPACING = 24
SHOWN = 9  # the sign in the screenshot (with SIGNDIGITS_SCREENSHOTS=1)
MOST_SURE_AND_WRONG = 1  # of the ten drawn signs
#: The canvas's pixels, as the component sends them to the app (``getImageData``).
CANVAS_PIXELS = "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"


def outline(digit: int) -> list[tuple[float, float]]:
    """The example hand's outline on the canvas as polygon corners, each ``SPACING`` from
    every other (where two fingers almost touch, the outline cuts across their gap)."""
    photo = np.asarray(Image.open(example_paths()[digit]).convert("RGB"))
    filled = np.all(drawing(hand_mask(photo), CANVAS) == SKIN_RGB, axis=-1)
    padded = np.pad(filled.astype(float), 1)
    line = max(contourpy.contour_generator(z=padded).lines(0.5), key=len) - 1
    corners: list[np.ndarray] = []
    for point in np.clip(line, 1, CANVAS - 2):
        if all(np.hypot(*(point - corner)) >= SPACING for corner in corners):
            corners.append(point)
    return [(float(x), float(y)) for x, y in corners]


def polygon_picture(corners) -> np.ndarray:
    picture = Image.new("RGB", (CANVAS, CANVAS), CANVAS_RGB)
    ImageDraw.Draw(picture).polygon(corners, fill=SKIN_RGB)
    return np.asarray(picture)


def canvas_pixels(canvas) -> np.ndarray:
    """The drawing canvas's RGBA pixels (H, W, 4)."""
    size = canvas.evaluate("c => [c.height, c.width]")
    return np.asarray(canvas.evaluate(CANVAS_PIXELS), np.uint8).reshape(*size, 4)


def likeliest(page) -> str:
    """The first of the top three: the digit stated, or the first guess of "Not sure"."""
    top = page.locator(".sd-top span").first
    top.wait_for(state="visible")
    return top.inner_text().strip()


def test_each_sign_drawn_as_a_filled_hand_is_read_right_or_not_sure(browser, server, classifier):
    corners = {digit: outline(digit) for digit in sorted(example_paths())}
    answers = {d: classifier.predict(polygon_picture(c)) for d, c in corners.items()}
    library = {d: answer.digit for d, answer in answers.items()}
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{server.url}/draw")
    page.get_by_text("Draw on the canvas").wait_for()
    page.locator(".st-key-sketch_tool").get_by_text("Polygon", exact=True).click()
    page.get_by_text("Click the corners").wait_for()
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for(state="visible")
    drawn = page.locator("canvas.dc-canvas.lower-canvas")  # the drawing, not its background
    settle(page)
    read, on_canvas = {}, {}
    for digit, points in corners.items():
        page.get_by_text("Draw on the canvas").wait_for()
        box = canvas.bounding_box()
        for x, y in [*points, points[0]]:  # the first corner again closes the polygon
            page.mouse.click(box["x"] + x, box["y"] + y)
        read[digit] = int(likeliest(page))
        on_canvas[digit] = classifier.predict(flatten_drawing(canvas_pixels(drawn))).digit
        if digit == SHOWN:
            settle(page)
            screenshot(page, "draw")
        page.get_by_role("button", name="Clear").click()
    context.close()
    right_in_python = [d for d in corners if library[d] == d]
    assert len(right_in_python) >= 7, library
    sure_and_wrong = {d: (a.digit, a.confidence) for d, a in answers.items()
                      if a.digit != d and a.confidence >= DEFAULT_THRESHOLD / 100}  # fmt: skip
    # the real-scenes models read one drawn sign (a 4, as a 5 at 76 %) wrong and sure: one at most
    assert len(sure_and_wrong) <= MOST_SURE_AND_WRONG, sure_and_wrong
    assert read == on_canvas, library
