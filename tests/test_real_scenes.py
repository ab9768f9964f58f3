"""The real scenes are split by source: no place and no Caltech category on two sides."""

import numpy as np
import pytest

from signdigits import real_scenes
from signdigits.real_scenes import (
    ALWAYS_TRAIN,
    SPLITS,
    caltech_photos,
    category_splits,
    frame_targets,
    hand_found,
    session_of,
    webcam_frames,
)  # fmt: skip
from tests.conftest import SHARED_DATA_DIR

SCENES = SHARED_DATA_DIR.parent / "scenes"


@pytest.fixture(scope="module")
def scenes_dir():
    if not (SCENES / "webcam-hands" / "boxes.csv").is_file():
        pytest.skip(f"{SCENES} is absent (the real scenes are read at run time, never committed)")
    return SCENES


def test_sessions_and_categories_never_sit_on_two_sides(scenes_dir):
    sessions = {split: {session_of(f.path.name) for f in webcam_frames(split, scenes_dir)} for split in SPLITS}
    categories = {split: {p.parent.name for p in caltech_photos(split, scenes_dir)} for split in SPLITS}
    for sides in (sessions, categories):
        for a in SPLITS:
            for b in SPLITS:
                assert a == b or not sides[a] & sides[b], (a, b)
    assert sessions["test"] == set(real_scenes.WEBCAM_SESSIONS["test"])
    assert len(categories["test"]) == real_scenes.TEST_CATEGORIES
    assert len(categories["validation"]) == real_scenes.VALIDATION_CATEGORIES
    assert set(ALWAYS_TRAIN) <= categories["train"]
    assert category_splits(scenes_dir) == category_splits(scenes_dir)  # drawn the same every time


def test_every_frame_and_hand_is_on_one_side(scenes_dir):
    frames = [f for split in SPLITS for f in webcam_frames(split, scenes_dir)]
    assert len({f.path for f in frames}) == len(frames) == len(list((scenes_dir / "webcam-hands" / "frames").iterdir()))
    test = webcam_frames("test", scenes_dir)
    targets = frame_targets(test)
    assert targets.shape == (len(test), real_scenes.MAX_HANDS, 5)
    assert ((targets[..., :4] >= 0) & (targets[..., :4] <= 1)).all() and (targets[:, 0, 4] == 1).all()


def test_the_hand_found_rule():
    hands = np.asarray([[100, 100, 200, 300, 1.0], [0, 0, 0, 0, 0.0]])
    assert hand_found((110, 120, 190, 280), hands)  # inside, similar size
    assert not hand_found((300, 100, 400, 300), hands)  # centre outside
    assert not hand_found((145, 195, 155, 205), hands)  # centre inside, far too small
    assert not hand_found((0, 0, 400, 400), hands)  # centre inside, far too big
    assert hand_found((110, 120, 190, 280), [(100, 100, 200, 300)])  # boxes without a slot flag
