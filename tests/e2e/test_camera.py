"""The camera, through Chromium's fake camera playing a real hand photo in a scene.

The frame is a photo of an unseen-in-this-test person's hand pasted into a busy scene at
45 % of the frame's height, as a webcam would see it. The test first picks a frame that the
Python path reads right, then shows that frame to the app through the browser's camera and
expects the same digit: the camera goes through the same path as an upload.
"""

import numpy as np
import pytest
from PIL import Image

from signdigits.scenes import background, hand_mask, paste_hand
from tests.e2e.conftest import WAIT_MS, camera_playing, settle

pytestmark = pytest.mark.e2e

FRAME = (640, 480)


def write_y4m(path, frame: np.ndarray, frames: int = 30):
    """``frame`` (H, W, 3 uint8 RGB) as a still YUV4MPEG2 (4:2:0) video."""
    rgb = frame.astype(np.float32)
    y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    u = 128 - 0.168736 * rgb[..., 0] - 0.331264 * rgb[..., 1] + 0.5 * rgb[..., 2]
    v = 128 + 0.5 * rgb[..., 0] - 0.418688 * rgb[..., 1] - 0.081312 * rgb[..., 2]
    planes = [np.clip(p, 0, 255).astype(np.uint8) for p in (y, u[::2, ::2], v[::2, ::2])]
    height, width = y.shape
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n")
            for plane in planes:
                out.write(plane.tobytes())


@pytest.fixture(scope="module")
def scene(classifier, photo_paths):
    """A webcam-like frame whose digit the Python path reads with confidence >= 0.8."""
    rng = np.random.default_rng(11)
    for path in photo_paths[7::90]:
        photo = np.asarray(Image.open(path).convert("RGB").resize((100, 100)))
        frame = background(rng, FRAME, "natural", "eval")
        frame, _ = paste_hand(frame, photo, hand_mask(photo), 0.45 * FRAME[1], (400, 250))
        prediction = classifier.predict(frame)
        if prediction.digit == int(path.parent.name) and prediction.confidence >= 0.8:
            return frame, prediction.digit
    pytest.skip("no candidate frame was read surely enough by the bundled model")


@pytest.fixture(scope="module")
def camera_browser(scene, tmp_path_factory):
    video = tmp_path_factory.mktemp("camera") / "hand.y4m"
    write_y4m(video, scene[0])
    with camera_playing(video) as browser:
        yield browser


def test_the_camera_reads_a_hand_in_a_room(camera_browser, server, scene):
    context = camera_browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["camera"], origin=server.url)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(server.url)
    page.get_by_text("Take a photo").click()
    # the snapshot is of what the preview shows: wait until it shows the camera's frames
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=\"stCameraInput\"] video');"
        " return v !== null && v.readyState >= 2 && v.videoWidth > 0; }"
    )
    page.get_by_role("button", name="Take Photo").click()
    digit = page.locator(".sd-digit").first
    digit.wait_for(state="visible")
    settle(page)
    assert digit.inner_text().strip() == str(scene[1])
    page.get_by_text("camera photo", exact=True).wait_for()  # its caption, not a generated file name
    preview = page.locator('[data-testid="stCameraInput"]').bounding_box()
    assert preview["width"] <= 420  # a compact preview: the answer stays in view
    box = digit.bounding_box()
    assert box["y"] + box["height"] <= 900, box
    context.close()
