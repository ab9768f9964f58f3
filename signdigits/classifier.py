"""The classifier: one loaded model, predictions for one image or a stream of any size.

Errors are values: an unreadable image becomes a :class:`Prediction` with ``error`` set,
never an exception, so one bad file never costs the rest of a batch.
"""

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

import numpy as np

from signdigits import DEFAULT_MODEL_PATH, IMAGE_SIZE
from signdigits.backend import tf
from signdigits.labels import digit_order
from signdigits.model import load_model
from signdigits.prediction import Prediction
from signdigits.preprocess import UnreadableImageError, preprocess

BATCH_SIZE = 256


def _prepare(source):
    """Source (or a zero-argument callable returning one) -> model input, or an error text."""
    try:
        return preprocess(source() if callable(source) else source)
    except UnreadableImageError as exc:
        return str(exc)
    except OSError as exc:  # e.g. a file that vanished or is not readable
        return f"cannot read file: {exc.strerror or exc}"
    except Exception as exc:  # one odd item never ends a batch
        return f"cannot read file ({type(exc).__name__}: {exc})"


class Classifier:
    """Loads a model file once and classifies images with it."""

    def __init__(self, model_path=DEFAULT_MODEL_PATH):
        self.model_path = model_path
        self.model, self.index_to_digit, self.info = load_model(model_path)
        self._digit_columns = np.asarray(digit_order(self.index_to_digit))
        # Traced once, up front; calling the concrete function skips tf.function's
        # per-call argument matching, which is most of the cost for a single image.
        self._forward = tf.function(
            lambda x: self.model(x, training=False), autograph=False
        ).get_concrete_function(tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 1], tf.float32))

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """Model inputs (N, 64, 64) -> probabilities (N, 10), columns in digit order 0..9."""
        batch = np.asarray(inputs, dtype=np.float32).reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1)
        return self._forward(tf.constant(batch)).numpy()[:, self._digit_columns]

    def _result(self, name: str, probabilities: np.ndarray) -> Prediction:
        digit = int(probabilities.argmax())
        return Prediction(
            name=name,
            digit=digit,
            confidence=float(probabilities[digit]),
            probabilities=tuple(float(p) for p in probabilities),
        )

    def predict_input(self, model_input: np.ndarray, name: str = "") -> Prediction:
        """Classify an already preprocessed (64, 64) input."""
        return self._result(name, self.probabilities(model_input[None])[0])

    def predict(self, source, name: str = "") -> Prediction:
        """Classify one image (path, bytes, file-like, PIL image or array)."""
        prepared = _prepare(source)
        if isinstance(prepared, str):
            return Prediction(name=name, error=prepared)
        return self.predict_input(prepared, name)

    def predict_many(
        self, items: Iterable[tuple[str, object]], batch_size: int = BATCH_SIZE
    ) -> Iterator[Prediction]:
        """Classify ``(name, source)`` pairs lazily, in input order, ``batch_size`` at a time.

        A source may be a zero-argument callable that returns the image bytes, so that
        only two batches of files are ever read and decoded at a time: one thread reads
        and decodes the next batch while the model (which releases the GIL) runs this one.
        """
        items = iter(items)

        def read_next_chunk():
            chunk = list(islice(items, batch_size))
            return chunk, [_prepare(source) for _, source in chunk]

        with ThreadPoolExecutor(max_workers=1) as reader:
            pending = reader.submit(read_next_chunk)
            while True:
                chunk, prepared = pending.result()
                if not chunk:
                    return
                pending = reader.submit(read_next_chunk)
                good = [i for i, p in enumerate(prepared) if not isinstance(p, str)]
                probs = self.probabilities(np.stack([prepared[i] for i in good])) if good else []
                by_index = dict(zip(good, probs))
                for i, (name, _) in enumerate(chunk):
                    if i in by_index:
                        yield self._result(name, by_index[i])
                    else:
                        yield Prediction(name=name, error=prepared[i])
