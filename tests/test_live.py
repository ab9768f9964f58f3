"""The live camera's reader: frames in, annotated frames out, the models never waited for.

Throttling is tested with a clock and a start function of the test's own (no sleeping, no
timing); reading is tested with the bundled models on a real hand pasted into a scene.
"""

import logging
import threading

import numpy as np
import pytest
from PIL import Image

from signdigits.classifier import NO_HAND
from signdigits.evaluate import UNSURE_BELOW
from signdigits.live import (
    ICE_SERVERS_ENV,
    SURE_COLOUR,
    UNSURE_COLOUR,
    LiveAnswer,
    LiveReader,
    annotate,
    ice_servers,
    read_frame,
)
from signdigits.scenes import background, hand_mask, paste_hand

FRAME = (640, 480)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def held(monkeypatch):
    """A reader whose readings are started by the test (``pending``), on a fixed answer."""
    answer = LiveAnswer(digit=3, confidence=0.9, top=((3, 0.9), (5, 0.05), (8, 0.02)), box=(0.25, 0.25, 0.75, 0.75))
    shown = []
    monkeypatch.setattr("signdigits.live.read_frame", lambda classifier, rgb, threshold: shown.append(rgb) or answer)
    clock, pending = Clock(), []
    return LiveReader(object(), interval=0.25, clock=clock, start=pending.append), clock, pending, shown, answer


def frame(value: int = 40) -> np.ndarray:
    return np.full((FRAME[1], FRAME[0], 3), value, np.uint8)


def test_frames_come_back_at_once_while_a_reading_runs(held):
    reader, clock, pending, shown, answer = held
    first = frame()
    assert reader.process(first) is first  # nothing to draw yet
    assert len(pending) == 1  # one reading started...
    for step in range(10):  # ...and while it runs, every frame comes straight back
        clock.now += 0.1
        assert reader.process(frame(step)).shape == first.shape
    assert len(pending) == 1 and reader.answer is None
    pending.pop()()  # the reading finishes
    assert reader.answer == answer and reader.readings == 1
    assert shown[0] is not first and np.array_equal(shown[0], first)  # it read a copy


def test_readings_start_at_most_once_an_interval(held):
    reader, clock, pending, _, _ = held
    reader.process(frame())
    pending.pop()()
    clock.now += 0.125
    reader.process(frame())
    assert not pending  # too soon after the last start
    clock.now += 0.125
    reader.process(frame())
    assert len(pending) == 1


def test_rate_and_reset(held):
    reader, clock, pending, _, _ = held
    for _ in range(6):
        reader.process(frame())
        clock.now += 0.25
        pending.pop()()
    assert reader.readings_per_second() == pytest.approx(4.0)
    clock.now += 10
    assert reader.readings_per_second() == 0.0  # nothing recent
    reader.reset()
    assert reader.answer is None and reader.readings == 0


def test_the_answer_is_drawn_on_later_frames(held):
    reader, clock, pending, _, answer = held
    reader.process(frame())
    pending.pop()()
    clock.now += 0.05
    drawn = reader.process(frame())
    box_edge = drawn[FRAME[1] // 2, FRAME[0] // 4 : FRAME[0] // 4 + 2]  # the left side of the box
    assert (box_edge == SURE_COLOUR).all(axis=-1).any()


def test_a_failing_reading_is_logged_and_shown_as_an_error(monkeypatch, caplog):
    def broken(classifier, rgb, threshold):
        raise RuntimeError("backend gone")

    monkeypatch.setattr("signdigits.live.read_frame", broken)
    reader = LiveReader(object(), start=lambda work: work())
    with caplog.at_level(logging.ERROR, logger="signdigits.live"):
        reader.process(frame())
    assert reader.answer.error == "this frame could not be read" and reader.answer.unsure
    assert "backend gone" in caplog.text


def test_labels_and_advice_follow_the_uncertainty_rules():
    sure = LiveAnswer(digit=7, confidence=0.93, box=(0.3, 0.2, 0.6, 0.8))
    unsure = LiveAnswer(digit=7, confidence=UNSURE_BELOW - 0.01, box=(0.3, 0.2, 0.6, 0.8))
    far = LiveAnswer(digit=7, confidence=0.9, box=(0.45, 0.45, 0.5, 0.55))
    none = LiveAnswer(error=NO_HAND)
    assert sure.label == "7  93%" and not sure.unsure and sure.advice == ""
    assert LiveAnswer(digit=5, confidence=0.997, box=(0.3, 0.2, 0.6, 0.8)).label == "5  99%"  # as the page says
    assert unsure.unsure and unsure.label.startswith("not sure") and "fingers" in unsure.advice
    assert "closer" in far.advice
    assert none.unsure and none.label == NO_HAND and "Hold one hand up" in none.advice


def test_the_readers_threshold_decides_not_sure(classifier, room):
    """The page sets the reader's threshold to the app's setting; every reading follows it."""
    scene, expected = room
    reader = LiveReader(classifier, start=lambda work: work())
    reader.threshold = 1.0
    reader.process(scene)
    assert reader.answer.digit == expected.digit and reader.answer.unsure
    assert reader.answer.label.startswith("not sure")
    assert LiveAnswer(digit=7, confidence=0.55, threshold=0.5).unsure is False
    assert LiveAnswer(digit=7, confidence=0.55, threshold=0.6).unsure is True


def test_unsure_answers_are_drawn_in_another_colour():
    unsure = LiveAnswer(digit=7, confidence=0.3, box=(0.25, 0.25, 0.75, 0.75))
    drawn = annotate(frame(), unsure)
    assert (drawn == UNSURE_COLOUR).all(axis=-1).any() and not (drawn == SURE_COLOUR).all(axis=-1).any()
    no_hand = annotate(frame(), LiveAnswer(error=NO_HAND))
    assert (no_hand[:40, :200] == UNSURE_COLOUR).all(axis=-1).any()  # the label in the corner


@pytest.fixture(scope="module")
def room(classifier, photo_paths):
    """A webcam-like frame with a real hand that the bundled model reads surely, its digit."""
    rng = np.random.default_rng(21)
    for path in photo_paths[3::85]:
        photo = np.asarray(Image.open(path).convert("RGB").resize((100, 100)))
        scene, _ = paste_hand(background(rng, FRAME, "natural", "eval"), photo, hand_mask(photo), 0.5 * FRAME[1],
                              (360, 240))  # fmt: skip
        prediction = classifier.predict(scene)
        if prediction.digit == int(path.parent.name) and prediction.confidence >= 0.8:
            return scene, prediction
    pytest.skip("no candidate frame was read surely enough by the bundled model")


def test_a_real_frame_is_read_like_a_photo(classifier, room):
    scene, expected = room
    answer = read_frame(classifier, scene)
    assert answer.digit == expected.digit and answer.confidence == pytest.approx(expected.confidence, abs=1e-5)
    assert [d for d, _ in answer.top] == [d for d, _ in expected.top(3)]
    x0, y0, x1, y1 = answer.box
    assert 0 <= x0 < x1 <= 1.05 and 0 <= y0 < y1 <= 1.05
    assert x0 * FRAME[0] <= 360 <= x1 * FRAME[0]  # around where the hand was pasted


def test_a_frame_without_a_hand_is_no_hand(classifier):
    wall = np.full((FRAME[1], FRAME[0], 3), (226, 222, 214), np.uint8)
    answer = read_frame(classifier, wall)
    assert answer.error == NO_HAND and answer.digit is None and answer.box is None


def test_the_reader_on_its_threads_reads_the_hand(classifier, room):
    scene, expected = room
    done = threading.Event()
    start = lambda work: threading.Thread(target=lambda: (work(), done.set()), daemon=True).start()  # noqa: E731
    reader = LiveReader(classifier, start=start)
    drawn = reader.process(scene)
    assert done.wait(120)
    assert reader.answer.digit == expected.digit
    later = reader.process(scene)
    assert later.shape == scene.shape and not np.array_equal(later, drawn)  # the answer is on it


def test_ice_servers_come_from_the_environment_or_are_none(caplog):
    assert ice_servers(None) == [] and ice_servers("") == []
    stun = [{"urls": ["stun:stun.example.org:3478"]}]
    assert ice_servers('[{"urls": ["stun:stun.example.org:3478"]}]') == stun
    with caplog.at_level(logging.WARNING, logger="signdigits.live"):
        assert ice_servers("stun:oops") == [] and ice_servers('{"urls": "x"}') == []
    assert ICE_SERVERS_ENV in caplog.text
