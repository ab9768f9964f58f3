"""Classifier: predictions for one image or a lazy stream; errors are values, not exceptions.

Plumbing tests use ``plain``: the bundled classifier behind a tiny localizer that always
finds the hand filling the whole picture, so that any picture gets an answer.
"""

import io

import numpy as np
import pytest
from PIL import Image

from signdigits import DEFAULT_MODEL_PATH
from signdigits.classifier import NO_HAND, Classifier
from signdigits.labels import INDEX_TO_DIGIT
from signdigits.prediction import Prediction
from signdigits.preprocess import FRAMINGS, decode, hand_input, hand_inputs
from signdigits.serving import CLASSIFIER

pytestmark = pytest.mark.timeout(120)

PERMUTED = (3, 1, 4, 0, 5, 9, 2, 6, 8, 7)


@pytest.fixture(scope="module")
def plain(make_tiny_localizer):
    return Classifier(DEFAULT_MODEL_PATH, make_tiny_localizer())


def png(value=0, size=(40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, value).save(buffer, "PNG")
    return buffer.getvalue()


def assert_valid(prediction: Prediction):
    assert prediction.ok and prediction.error is None
    assert prediction.digit in range(10)
    assert len(prediction.probabilities) == 10
    assert sum(prediction.probabilities) == pytest.approx(prediction.hand_score, abs=1e-4)
    assert prediction.confidence == max(prediction.probabilities)
    assert prediction.probabilities[prediction.digit] == prediction.confidence


def test_predict_a_real_photo(classifier, photo_paths):
    path = photo_paths[0]
    prediction = classifier.predict(path, name=path.name)
    assert_valid(prediction)
    assert prediction.name == path.name
    assert prediction.digit == int(path.parent.name)  # an easy training photo
    x0, y0, x1, y1 = prediction.box
    assert 0 <= x0 < x1 <= 101 and 0 <= y0 < y1 <= 101 and prediction.hand_score >= 0.5


def test_a_mirrored_photo_gives_the_same_digit(classifier, confident_photos):
    """A left hand is a mirrored right hand: each digit's surely-read photo, mirrored."""
    assert len(confident_photos) >= 8
    for digit, path in confident_photos.items():
        photo = np.asarray(Image.open(path).convert("RGB"))
        left = classifier.predict(photo[:, ::-1].copy())
        assert left.digit == digit, (path, left.top(3))


def test_the_temperature_in_the_model_file_is_applied(make_tiny_model, make_tiny_localizer, tmp_path):
    import keras

    from signdigits.model import load_model, save_model

    model, table, info = load_model(DEFAULT_MODEL_PATH)
    hotter = save_model(model, tmp_path / "hot.h5", table, {**info, "temperature": 3.0})
    localizer = make_tiny_localizer()
    reference, scaled = Classifier(DEFAULT_MODEL_PATH, localizer), Classifier(hotter, localizer)
    assert scaled.temperature == 3.0
    inputs = np.random.default_rng(0).random((4, 64, 64), dtype=np.float32)
    logs = reference.log_probabilities(inputs)
    expected = keras.ops.softmax(logs / 3.0).numpy()
    assert scaled.probabilities(inputs) == pytest.approx(expected, abs=1e-5)
    assert scaled.probabilities(inputs).max() < reference.probabilities(inputs).max() or \
        reference.temperature > 3.0


def test_no_hand_is_an_error_row_with_the_score(make_tiny_localizer):
    nobody = Classifier(DEFAULT_MODEL_PATH, make_tiny_localizer(score=0.1))
    prediction = nobody.predict(png(30), name="wall.png")
    assert not prediction.ok and prediction.error == NO_HAND
    assert prediction.hand_score == pytest.approx(0.1, abs=1e-3) and prediction.box is None
    assert [p.error for p in nobody.predict_many([("a", png(1)), ("b", b"x")])][0] == NO_HAND


def test_a_box_given_skips_the_search(make_tiny_localizer, photo_paths):
    nobody = Classifier(DEFAULT_MODEL_PATH, make_tiny_localizer(score=0.0))
    prediction = nobody.predict(photo_paths[0], box=(0, 0, 100, 100))
    assert prediction.ok and prediction.box == (0, 0, 100, 100)
    assert prediction.hand_score == 1.0 and sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-4)


def test_a_doubtful_hand_makes_a_doubtful_answer(make_tiny_localizer, photo_paths):
    """Each digit's probability is the classifier's times the localizer's hand score."""
    doubtful = Classifier(DEFAULT_MODEL_PATH, make_tiny_localizer(score=0.7))
    reading = doubtful.find_hand(photo_paths[0])
    expected = doubtful.probabilities(reading.model_inputs[None])[0] * reading.hand_score
    for prediction in (doubtful.predict(photo_paths[0]), doubtful.predict_reading(reading),
                       next(doubtful.predict_many([("one", photo_paths[0])]))):  # fmt: skip
        assert prediction.hand_score == pytest.approx(0.7, abs=1e-3)
        assert prediction.probabilities == pytest.approx(tuple(expected), abs=1e-6)
        assert prediction.confidence == max(expected) < 0.7 + 1e-3


@pytest.mark.parametrize("kind", ["path", "str", "bytes", "file", "pil", "array"])
def test_predict_accepts_every_source_kind(plain, tmp_path, kind):
    data = png(30)
    path = tmp_path / "x.png"
    path.write_bytes(data)
    source = {
        "path": path,
        "str": str(path),
        "bytes": data,
        "file": io.BytesIO(data),
        "pil": Image.open(io.BytesIO(data)),
        "array": np.full((40, 40), 30, np.uint8),
    }[kind]
    prediction = plain.predict(source)
    assert_valid(prediction)
    assert prediction.box == pytest.approx((0, 0, 40, 40), abs=0.01)
    reference = plain.probabilities(hand_inputs(decode(data).gray, (0, 0, 40, 40))[None])[0]
    assert prediction.probabilities == pytest.approx(reference, abs=1e-6)


@pytest.mark.parametrize("source", [b"", b"garbage", "/no/such/file.jpg", np.zeros((3,)), 42])
def test_predict_never_raises_on_bad_input(classifier, source):
    prediction = classifier.predict(source, name="bad")
    assert not prediction.ok
    assert prediction.name == "bad" and prediction.error
    assert prediction.digit is None and prediction.probabilities is None
    assert prediction.top() == []


def test_probability_columns_are_in_digit_order(classifier, photo_paths):
    """The served model's columns are digits 0..9: the Keras model's, through the table
    (as probabilities, within what its int8 weights may move them)."""
    from signdigits.model import load_model

    model, _, _ = load_model(DEFAULT_MODEL_PATH)
    inputs = np.stack([decode(p).locator_input[16:80, 16:80, 0] for p in photo_paths[:5]])
    raw = model(inputs[..., None], training=False).numpy()  # class-index order
    mirrored = model(inputs[:, :, ::-1, None], training=False).numpy()
    expected = (np.log(raw) + np.log(mirrored)) / 2  # a crop and its mirror image
    by_digit = classifier.log_probabilities(inputs)
    for row_raw, row_digit in zip(expected, by_digit):
        for index, digit in enumerate(classifier.index_to_digit):
            assert np.exp(row_digit[digit]) == pytest.approx(np.exp(row_raw[index]), abs=CLASSIFIER.tolerance)


def test_a_hand_is_read_at_each_framing_and_the_logs_averaged(classifier, photo_paths):
    """The answer reads the crop at every framing (the first the one shown, then tighter
    and wider) and takes the mean of their log-probabilities."""
    reading = classifier.find_hand(photo_paths[0])
    assert reading.model_inputs.shape == (len(FRAMINGS), 64, 64) and FRAMINGS[0] == 1.0
    gray, box = decode(photo_paths[0]).gray, reading.box
    np.testing.assert_array_equal(reading.model_input, hand_input(gray, box))
    assert not np.array_equal(reading.model_inputs[1], reading.model_inputs[2])
    each = classifier.log_probabilities(reading.model_inputs)
    together = classifier.log_probabilities(reading.model_inputs[None])[0]
    assert together == pytest.approx(each.mean(axis=0), abs=1e-5)


def test_top(classifier, photo_paths):
    prediction = classifier.predict(photo_paths[0])
    top = prediction.top(3)
    assert len(top) == 3 and top[0] == (prediction.digit, prediction.confidence)
    assert top[0][1] >= top[1][1] >= top[2][1]


def test_predict_many_keeps_order_and_reports_errors(plain):
    items = []
    for i in range(11):
        items.append((f"good{i}", png(i * 20)))
        if i % 3 == 0:
            items.append((f"bad{i}", b"not an image"))
    results = list(plain.predict_many(items, batch_size=4))  # several batches
    assert [r.name for r in results] == [name for name, _ in items]
    for result in results:
        assert result.ok == result.name.startswith("good")
    singles = [plain.predict(source) for name, source in items if name.startswith("good")]
    batched = [r for r in results if r.ok]
    for single, batch in zip(singles, batched):
        assert batch.probabilities == pytest.approx(single.probabilities, abs=1e-5)


def test_predict_many_reads_lazily_at_most_two_batches_ahead(plain):
    reads = []

    def reader(i):
        def read():
            reads.append(i)
            if i == 5:
                raise OSError("vanished")
            return png(100)

        return read

    stream = plain.predict_many(((f"f{i}", reader(i)) for i in range(20)), batch_size=8)
    first = next(stream)
    assert first.ok and 8 <= len(reads) <= 16  # this batch, and perhaps the next one read ahead
    rest = list(stream)
    assert len(reads) == 20
    assert not rest[4].ok and "vanished" in rest[4].error


def test_predict_many_with_only_errors_and_nothing(classifier):
    assert list(classifier.predict_many([])) == []
    results = list(classifier.predict_many([("a", b""), ("b", b"x")]))
    assert [r.ok for r in results] == [False, False]


# ----------------------------------------------------------------------------- the file's table


@pytest.mark.parametrize("table", [INDEX_TO_DIGIT, PERMUTED, tuple(range(10))])
@pytest.mark.parametrize("hot", [0, 7])
def test_digits_follow_the_table_in_the_model_file(make_tiny_model, make_tiny_localizer, table, hot):
    tiny = Classifier(make_tiny_model(table, hot=hot), make_tiny_localizer())
    assert tiny.index_to_digit == table
    prediction = tiny.predict(png(0))
    assert prediction.digit == table[hot]
    assert prediction.confidence > 0.99
    many = list(tiny.predict_many([("a", png(0)), ("b", png(255))]))
    assert [p.digit for p in many] == [table[hot]] * 2


def test_classifier_refuses_a_missing_model(tmp_path):
    from signdigits.serving import ModelFileError

    with pytest.raises(ModelFileError, match="does not exist"):
        Classifier(tmp_path / "missing.h5")
    with pytest.raises(ModelFileError, match="does not exist"):
        Classifier(DEFAULT_MODEL_PATH, tmp_path / "missing_localizer.h5")


def test_boxes_are_in_the_files_own_pixels(classifier, confident_photos):
    """A big JPEG is decoded at reduced scale; its box and size still count its own pixels."""
    path = next(iter(confident_photos.values()))
    photo = Image.open(path).convert("RGB")
    buffer = io.BytesIO()
    photo.resize((photo.width * 8, photo.height * 8), Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=95)
    small, big = classifier.find_hand(path), classifier.find_hand(buffer.getvalue())
    assert decode(buffer.getvalue()).scale == 2.0  # 800 px decoded at half scale (400 px)
    assert big.size == (small.size[0] * 8, small.size[1] * 8)
    assert big.box == pytest.approx([v * 8 for v in small.box], abs=8 * 6)  # within 6 px of 100
    again = classifier.find_hand(buffer.getvalue(), box=big.box)  # a box given in those pixels
    assert again.box == pytest.approx(big.box, abs=1e-3)
    assert classifier.predict(buffer.getvalue()).box == big.box
