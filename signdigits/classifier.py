"""The classifier: one loaded model pair, predictions for one image or a stream of any size.

Every picture takes one path: decode -> the hand localizer finds the hand (or says there
is none): its likeliest candidates, each looked at closer (the square around it, and that
square's mirror image) -> the square around the hand, framed as the training photos frame
a hand, and a little tighter and wider -> 64x64 -> the classifier, which reads each crop
and its mirror image (a left hand is a mirrored right hand) -> the mean of their
log-probabilities -> probabilities at the calibrated temperature stored in the model file,
times the localizer's probability that there is a hand at all (a digit can be right only
where there is one, so a doubtful hand makes a doubtful answer). Both models run from
their serving files (:mod:`signdigits.serving`): no TensorFlow.

Errors are values: an unreadable image, or one without a hand, becomes a
:class:`Prediction` with ``error`` set, never an exception, so one bad file never costs
the rest of a batch.
"""

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice

import numpy as np
from PIL import Image

from signdigits import DEFAULT_LOCALIZER_PATH, DEFAULT_MODEL_PATH, IMAGE_SIZE
from signdigits.hand_grid import read_hands, with_mirror_image
from signdigits.prediction import NO_HAND, Prediction
from signdigits.preprocess import LOCATOR_SIZE, Decoded, UnreadableImageError, decode, hand_inputs
from signdigits.serving import CLASSIFIER, LOCALIZER, calibrated, load

#: Pictures decoded at a time (two batches are in memory: one read ahead): a 640x480 photo
#: takes 1.3 MB decoded, so a stream of them peaks near 290 MB at 64, 950 MB at 256.
BATCH_SIZE = 64
#: Below this localizer probability the answer is "no hand found".
HAND_THRESHOLD = 0.5
#: The localizer's further looks, each at the square of LOOK_CONTEXT times the longer side
#: of the box it found last, around that box (at most the picture's shorter side, moved
#: inside the picture), at that square's own resolution: a second look wherever that square
#: is not the whole picture, a third where the hand is still small (the square under
#: THIRD_LOOK_BELOW of the picture's shorter side). Chosen on the validation people and
#: places: at 1.6 the real webcam frames' hands were found in 90.1 % (1.25: 87.1 %, one look
#: alone: 90.1 %), small pasted hands boxed at a median IoU of 0.853 (0.846; one look: 0.774).
LOOK_CONTEXT, THIRD_LOOK_BELOW = 1.6, 0.7
#: The first look's candidates: its likeliest hand, and the next likeliest outside that
#: one's box where its probability reaches SECOND_CANDIDATE_FROM. Each is looked at closer,
#: and the one its looks find likeliest wins. On the validation places (three seeds), real
#: webcam frames' hands found +0 to +1.8 points (a face came first, the hand second), whole
#: photos flagged -0.4 to 0; from 0.2 instead of 0.05, one seed found 1.2 points fewer.
CANDIDATES, SECOND_CANDIDATE_FROM = 2, 0.05


@dataclass(frozen=True)
class HandReading:
    """Where the hand is in a picture (size and box in the file's own pixels) and the model
    inputs cut around it, one per framing."""

    size: tuple[int, int]
    box: tuple[float, float, float, float] | None
    hand_score: float
    model_inputs: np.ndarray | None  # (len(FRAMINGS), 64, 64); None where no hand was found

    @property
    def model_input(self) -> np.ndarray | None:
        """The crop at the training photos' framing (64, 64): the one a person is shown."""
        return None if self.model_inputs is None else self.model_inputs[0]


def _decode(source):
    """Source (or a zero-argument callable returning one) -> :class:`Decoded`, or an error text."""
    try:
        return decode(source() if callable(source) else source)
    except UnreadableImageError as exc:
        return str(exc)
    except OSError as exc:  # e.g. a file that vanished or is not readable
        return f"cannot read file: {exc.strerror or exc}"
    except Exception as exc:  # one odd item never ends a batch
        return f"cannot read file ({type(exc).__name__}: {exc})"


class Localizer:
    """The hand localizer: pictures -> the hand's box and the probability of a hand."""

    def __init__(self, path=DEFAULT_LOCALIZER_PATH, runtime=None):
        self.path = path
        self._forward, _, self.info = load(path, LOCALIZER, runtime)

    def locate(self, pictures: np.ndarray, sizes, count: int = 1, mirror=False) -> tuple[np.ndarray, np.ndarray]:
        """Locator inputs (N, LOCATOR_SIZE, LOCATOR_SIZE, 3) of pictures of ``sizes`` (width,
        height) -> the ``count`` likeliest hands' boxes (N, count, 4) in those pictures'
        pixels, their probabilities (N, count); with ``mirror``, each picture's mirror
        image read too (:func:`~signdigits.hand_grid.with_mirror_image`)."""
        if mirror:
            outputs = self._forward(np.concatenate([pictures, pictures[:, :, ::-1]]))
            outputs = with_mirror_image(outputs[: len(pictures)], outputs[len(pictures) :])
        else:
            outputs = self._forward(pictures)
        boxes, scores = read_hands(outputs, self.info.get("hand_score"), count)
        return boxes * np.tile(np.asarray(sizes, np.float32).reshape(-1, 1, 2), 2), scores

    def find(self, decoded: list[Decoded]) -> tuple[np.ndarray, np.ndarray]:
        """Decoded pictures -> the hand's box in each (its pixels) and the probability of a
        hand: a look at the whole picture, then closer looks around each candidate
        (:data:`CANDIDATES`); a candidate's probability is the mean of its looks' (a hand
        seen closer is surer, a face or a knot in the wood less so), and the likeliest
        wins. On the validation places and categories, with one candidate, the mean found
        92.4 % of the real frames' hands and flagged 94.0 % of the whole photos without one;
        the first look's alone, 91.2 % and 89.6 %."""
        sizes = np.asarray([d.size for d in decoded], np.float32).reshape(-1, 2)
        boxes, scores = self.locate(np.stack([d.locator_input for d in decoded]), sizes, CANDIDATES)
        # each candidate worth a closer look becomes a picture of its own
        owner, rank = np.nonzero((scores >= SECOND_CANDIDATE_FROM) | (np.arange(CANDIDATES) == 0))
        boxes, scores, sizes = boxes[owner, rank], scores[owner, rank], sizes[owner]
        candidates = [decoded[i] for i in owner]
        looks, shorter = np.ones(len(owner)), sizes.min(axis=1)
        for below in (sizes.max(axis=1), THIRD_LOOK_BELOW * shorter):
            longest = np.maximum(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]), 1.0)
            sides = np.minimum(LOOK_CONTEXT * longest, shorter)
            which, found = self._look_again(candidates, boxes, sides, np.flatnonzero(sides < below))
            scores[which] += found
            looks[which] += 1
        scores = scores / looks
        by_picture = np.lexsort((-scores, owner))  # each picture's likeliest candidate first
        best = by_picture[np.unique(owner[by_picture], return_index=True)[1]]
        return boxes[best], scores[best]

    def _look_again(self, decoded: list[Decoded], boxes: np.ndarray, sides: np.ndarray, which):
        """Replace the boxes of pictures ``which`` by those found in the square of ``sides``
        around them; returns the pictures looked at again and their hand probabilities."""
        squares, again = [], []
        for i in which:
            image, box, side = decoded[i], boxes[i], float(sides[i])
            width, height = image.size
            if image.rgb is None:
                continue
            # the square around the box, moved inside the picture where it sticks out
            x0 = min(max((box[0] + box[2] - side) / 2, 0.0), width - side)
            y0 = min(max((box[1] + box[3] - side) / 2, 0.0), height - side)
            square = image.rgb.transform((LOCATOR_SIZE, LOCATOR_SIZE), Image.Transform.EXTENT,
                                         (x0, y0, x0 + side, y0 + side), Image.Resampling.BILINEAR)  # fmt: skip
            squares.append(np.asarray(square, np.float32) / 255.0)
            again.append((i, x0, y0, side))
        if not again:
            return np.zeros(0, int), np.zeros(0, np.float32)
        # a closer look reads the square's mirror image too. On the validation places, real
        # frames' hands found in colour / grey, whole photos flagged: 97.7 / 80.1 / 95.3 %
        # without, 97.7 / 93.0 / 95.1 % with (the first look mirrored too, recalibrated: 97.7
        # / 85.4 / 97.3 %, the localizer's work doubled where now only the closer looks' is)
        found, scores = self.locate(np.stack(squares), [(side, side) for *_, side in again], mirror=True)
        for (i, x0, y0, _), box in zip(again, found[:, 0]):
            boxes[i] = box + np.float32([x0, y0, x0, y0])
        return np.asarray([i for i, *_ in again], int), scores[:, 0]


class Classifier:
    """Loads the classifier and the hand localizer once and reads digits with them.

    ``runtime="keras"`` runs the same forward passes through TensorFlow (the benchmark's
    baseline and the conversion check); the default serves from the LiteRT files, or
    from what the environment variable ``SIGNDIGITS_RUNTIME`` names.
    """

    def __init__(self, model_path=DEFAULT_MODEL_PATH, localizer_path=DEFAULT_LOCALIZER_PATH,
                 runtime=None):  # fmt: skip
        self.model_path = model_path
        self._forward, self.index_to_digit, self.info = load(model_path, CLASSIFIER, runtime)
        self.localizer = Localizer(localizer_path, runtime)
        self.temperature = float(self.info.get("temperature", 1.0))

    def log_probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """Model inputs (N, 64, 64), or (N, F, 64, 64) for each hand at F framings ->
        log-probabilities (N, 10) in digit order 0..9, up to a constant per row: the mean
        over the framings, each crop and its mirror image, before the temperature."""
        logs = self._forward(np.reshape(inputs, (-1, IMAGE_SIZE, IMAGE_SIZE, 1)))
        return logs.reshape(len(inputs), -1, logs.shape[-1]).mean(axis=1)

    def probabilities(self, inputs: np.ndarray, temperature: float | None = None) -> np.ndarray:
        """Model inputs (N, 64, 64) or (N, F, 64, 64) -> probabilities (N, 10), digit order,
        at the calibrated temperature (or at ``temperature``; 1 gives the model's own)."""
        return calibrated(self.log_probabilities(inputs), temperature or self.temperature)

    def _read(self, decoded: list[Decoded], boxes=None) -> list[HandReading]:
        """Readings with sizes and boxes in the files' own pixels (``boxes`` given in them)."""
        if boxes is None:
            found, scores = self.localizer.find(decoded)
        else:  # a box a person drew: read there, no search
            scales = np.asarray([d.scale for d in decoded], np.float32)[:, None]
            found, scores = np.asarray(boxes, np.float32).reshape(-1, 4) / scales, np.ones(len(decoded))
        readings = []
        for image, box, score in zip(decoded, found, scores):
            has_hand = score >= HAND_THRESHOLD
            size = (round(image.size[0] * image.scale), round(image.size[1] * image.scale))
            readings.append(HandReading(
                size, tuple(float(v) * image.scale for v in box) if has_hand else None, float(score),
                hand_inputs(image.gray, tuple(map(float, box))) if has_hand else None,
            ))  # fmt: skip
        return readings

    def find_hand(self, source, box=None) -> HandReading:
        """Decode ``source`` and find its hand (or read ``box`` there). Raises
        :class:`UnreadableImageError`."""
        return self._read([decode(source)], None if box is None else [box])[0]

    def _result(self, name: str, reading: HandReading, probabilities=None) -> Prediction:
        if reading.model_inputs is None:
            return Prediction(name=name, error=NO_HAND, hand_score=reading.hand_score)
        if probabilities is None:
            probabilities = self.probabilities(reading.model_inputs[None])[0]
        probabilities = probabilities * reading.hand_score  # a digit only where there is a hand
        digit = int(probabilities.argmax())
        return Prediction(
            name=name,
            digit=digit,
            confidence=float(probabilities[digit]),
            probabilities=tuple(float(p) for p in probabilities),
            box=reading.box,
            hand_score=reading.hand_score,
        )

    def predict_reading(self, reading: HandReading, name: str = "") -> Prediction:
        """The answer for a :class:`HandReading`."""
        return self._result(name, reading)

    def predict(self, source, name: str = "", box=None) -> Prediction:
        """Classify one image (path, bytes, file-like, PIL image or array); ``box``
        (x0, y0, x1, y1) skips the search and reads the hand there."""
        decoded = _decode(source)
        if isinstance(decoded, str):
            return Prediction(name=name, error=decoded)
        return self._result(name, self._read([decoded], None if box is None else [box])[0])

    def predict_many(
        self,
        items: Iterable[tuple[str, object]],
        batch_size: int = BATCH_SIZE,
        temperature: float | None = None,
    ) -> Iterator[Prediction]:
        """Classify ``(name, source)`` pairs lazily, in input order, ``batch_size`` at a time
        (probabilities at ``temperature`` if given, as in :meth:`probabilities`).

        A source may be a zero-argument callable that returns the image bytes, so that
        only two batches of files are ever read and decoded at a time: one thread reads
        and decodes the next batch while the models (which release the GIL) run this one.
        """
        items = iter(items)

        def read_next_chunk():
            chunk = list(islice(items, batch_size))
            return chunk, [_decode(source) for _, source in chunk]

        with ThreadPoolExecutor(max_workers=1) as reader:
            pending = reader.submit(read_next_chunk)
            while True:
                chunk, decoded = pending.result()
                if not chunk:
                    return
                pending = reader.submit(read_next_chunk)
                good = [i for i, d in enumerate(decoded) if not isinstance(d, str)]
                readings = dict(zip(good, self._read([decoded[i] for i in good]))) if good else {}
                hands = [i for i in good if readings[i].model_inputs is not None]
                probs = self.probabilities(
                    np.stack([readings[i].model_inputs for i in hands]), temperature
                ) if hands else []  # fmt: skip
                by_index = dict(zip(hands, probs))
                for i, (name, _) in enumerate(chunk):
                    if i in readings:
                        yield self._result(name, readings[i], by_index.get(i))
                    else:
                        yield Prediction(name=name, error=decoded[i])
