"""The Draw page: a sketch, labelled controls, the palm outline, and the crop tool."""

import numpy as np
import pytest
from PIL import Image

from signdigits.pictures import CANVAS_RGB
from tests.app.conftest import fake_canvas, headlines, png_bytes, run_app, shown_digits

PAGE = "app_pages/draw.py"


def test_the_controls_are_labelled_before_the_first_stroke():
    at = run_app(PAGE)
    assert [b.label for b in at.button] == ["Undo last stroke", "Clear"]
    assert at.toggle(key="outline").label == "Palm outline"
    assert any("Draw on the canvas" in i.value for i in at.info)


def test_a_drawing_goes_through_the_same_answer_panel(confident_photos):
    digit, path = next(iter(confident_photos.items()))
    drawing = Image.open(path).convert("RGBA").resize((360, 360))
    at = run_app(PAGE)
    with fake_canvas(drawing):
        at.run()
    assert not at.exception and not at.error
    assert shown_digits(at) + headlines(at) == [str(digit)]


def test_a_transparent_drawing_is_read_on_the_canvas_colour(confident_photos):
    """With the palm outline on, the canvas sends only the strokes (transparent elsewhere):
    they are read as drawn on the light canvas, as without the outline."""
    digit, path = next(iter(confident_photos.items()))
    photo = np.asarray(Image.open(path).convert("RGB").resize((360, 360)))
    opaque = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    light = np.all(np.abs(photo.astype(int) - CANVAS_RGB) < 60, axis=-1)
    strokes = opaque.copy()
    strokes[light, 3] = 0
    answers = []
    for drawing in (opaque, strokes):
        at = run_app(PAGE)
        with fake_canvas(Image.fromarray(drawing, "RGBA")):
            at.run()
        answers.append(shown_digits(at) + headlines(at))
    assert not at.exception and answers[0] == answers[1]


def test_undo_and_clear_restart_the_canvas_from_fewer_strokes(confident_photos):
    path = next(iter(confident_photos.values()))
    drawing = Image.open(path).convert("RGBA").resize((360, 360))
    at = run_app(PAGE)
    with fake_canvas(drawing):
        at.run()
        assert at.session_state["sketch_objects"] == [{"type": "path"}]
        at.button(key="undo").click().run()
        assert at.session_state["sketch_drawing"] == {"objects": [], "version": 1}
        at.button(key="clear").click().run()
        assert at.session_state["sketch_drawing"] == {"objects": [], "version": 2}


def test_an_empty_canvas_asks_for_a_drawing():
    at = run_app(PAGE)
    with fake_canvas(None):
        at.run()
    assert shown_digits(at) == [] and any("Draw on the canvas" in i.value for i in at.info)


def test_a_rectangle_around_the_hand_is_read_there(classifier, confident_photos):
    """The crop tool corrects the box: the hand is read where the person marked it (in the
    picture's own pixels, as ``boxes_in_image_space`` gives them), as the library reads it."""
    from signdigits.scenes import hand_mask, mask_box

    for digit, path in confident_photos.items():
        scene = Image.new("RGB", (800, 600), (40, 60, 30))
        scene.paste(Image.open(path).convert("RGB").resize((200, 200)), (520, 300))
        x0, y0, x1, y1 = mask_box(hand_mask(np.asarray(Image.open(path).convert("RGB").resize((100, 100)))))
        hand = (520 + 2 * x0, 300 + 2 * y0, 520 + 2 * x1, 300 + 2 * y1)
        if classifier.predict(scene, box=hand).digit == digit:
            break
    else:
        pytest.skip("the bundled model reads none of the marked hands right")
    box = {"left": hand[0], "top": hand[1], "width": hand[2] - hand[0], "height": hand[3] - hand[1]}
    at = run_app(PAGE)
    at.segmented_control(key="draw_kind").set_value("Crop a photo").run()
    at.file_uploader(key="crop_photo").set_value(("room.png", png_bytes(scene), "image/png"))
    at.session_state["threshold"] = 0  # state the digit however sure
    with fake_canvas(None, [box]):
        at.run()
    assert not at.exception and not at.error
    assert shown_digits(at) == [str(digit)]
    assert "the hand where you marked it" in [c for image in at.image for c in image.captions]
