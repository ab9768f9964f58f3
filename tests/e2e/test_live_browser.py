"""The live camera page in a real browser: Chromium's fake camera plays a real hand.

The video is a photo of a person's hand pasted into a busy scene, as a webcam would see
it; the test first picks a frame that the Python path reads surely, then starts the live
view (WebRTC over loopback, no STUN/TURN server) and waits for the page to show that
digit. It also reports how often the answer was read and how many frames came back.
"""

import re

import numpy as np
import pytest

from tests.e2e.conftest import WAIT_MS, camera_playing, screenshot
from tests.e2e.test_camera import write_y4m

pytestmark = pytest.mark.e2e

POLL_MS = 1000
#: Readings to wait for before the digit is read: the answer has been refreshed several times.
READINGS = 3
#: Starts of the camera to try: on a loaded machine WebRTC may drop the connection, and the
#: page then offers "Start the camera" again, as it would to a person.
STARTS = 3
#: The video's size: small, since on this project's 2-core machine Chromium encodes it and
#: the server decodes and encodes it again in software.
FRAME = (320, 240)


def rough(frame):
    """``frame`` as a low-bit-rate video might deliver it: half size, strong JPEG artefacts."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    picture = Image.fromarray(frame)
    picture.resize((FRAME[0] // 2, FRAME[1] // 2)).resize(FRAME).save(buffer, "JPEG", quality=25)
    return np.asarray(Image.open(buffer).convert("RGB"))


@pytest.fixture(scope="module")
def live_scene(classifier, photo_paths):
    """A webcam-like frame whose digit the Python path reads surely, even when degraded."""
    from PIL import Image

    from signdigits.scenes import background, hand_mask, paste_hand

    rng = np.random.default_rng(17)
    for path in photo_paths[9::45]:
        photo = np.asarray(Image.open(path).convert("RGB").resize((100, 100)))
        frame, _ = paste_hand(background(rng, FRAME, "natural", "eval"), photo, hand_mask(photo), 0.55 * FRAME[1],
                              (FRAME[0] // 2, FRAME[1] // 2 + 10))  # fmt: skip
        digit = int(path.parent.name)
        answers = [classifier.predict(frame), classifier.predict(rough(frame))]
        if all(a.digit == digit and a.confidence >= 0.8 for a in answers):
            return frame, digit
    pytest.skip("no candidate frame was read surely enough by the bundled model")


@pytest.fixture(scope="module")
def live_browser(live_scene, tmp_path_factory):
    video = tmp_path_factory.mktemp("live") / "hand.y4m"
    write_y4m(video, live_scene[0])
    with camera_playing(video) as browser:
        yield browser


def readings(page) -> int:
    """How many times the server has read the video so far, as the page says."""
    rate = page.locator(".sd-live-rate")
    if not rate.count():
        return 0
    match = re.search(r"\((\d+) so far\)", rate.first.inner_text())
    return int(match.group(1)) if match else 0


def test_the_live_view_reads_a_hand_shown_to_the_camera(live_browser, server, live_scene, record_property):
    context = live_browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["camera"], origin=server.url)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{server.url}/live")
    page.get_by_text("Live camera").first.wait_for()
    component = page.frame_locator('iframe[title*="streamlit_webrtc"]')
    start, stop = (component.get_by_role("button", name=name) for name in ("Start the camera", "Stop"))

    for _ in range(STARTS):
        start.click()
        stop.wait_for()
        polls = WAIT_MS // POLL_MS
        while polls and readings(page) < READINGS and stop.is_visible():
            page.wait_for_timeout(POLL_MS)
            polls -= 1
        if readings(page) >= READINGS:
            break
    assert readings(page) >= READINGS, "the live view never read the video (see the server log)"
    digit = page.locator(".sd-live-digit").first
    digit.wait_for(state="visible")
    assert digit.inner_text().strip() == str(live_scene[1])
    screenshot(page, "live")

    rate = page.locator(".sd-live-rate").first.inner_text()
    frames = component.locator("video").first.evaluate("video => video.getVideoPlaybackQuality().totalVideoFrames")
    assert frames > 0  # the annotated video came back from the server
    record_property("live_rate", rate)
    record_property("video_frames_back", frames)
    print(f"\nlive view: {rate}; {frames} video frames shown in the page")

    stop.click()
    page.get_by_text("Press Start the camera").wait_for()
    context.close()


def test_the_live_page_after_another_page_keeps_the_server_up(live_browser, server, confident_photos):
    """A person reads a photo first, then opens Live: the server must still answer (libsrtp,
    under streamlit-webrtc, crashed it when a page had loaded TensorFlow before)."""
    from tests.e2e.conftest import healthy

    page = live_browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.set_default_timeout(WAIT_MS)
        page.goto(server.url)
        page.locator("input[type=file]").first.set_input_files(str(next(iter(confident_photos.values()))))
        page.locator(".sd-digit").first.wait_for(state="visible")
        page.get_by_role("link", name="Live").click()
        page.get_by_text("Live camera").first.wait_for(state="visible")
        component = page.frame_locator('iframe[title*="streamlit_webrtc"]')
        component.get_by_role("button", name="Start the camera").wait_for(state="visible")
    finally:
        page.close()
    assert healthy(server.url) and server.process.poll() is None
