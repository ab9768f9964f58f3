"""TensorFlow and Keras, imported once and quietly: ``from signdigits.backend import keras, tf``.

Importing TensorFlow writes C++ start-up lines straight to file descriptor 2 (oneDNN,
CUDA probing, absl's "before InitializeLog" notice), and ``TF_CPP_MIN_LOG_LEVEL`` does not
reach those written before absl's logging starts. So the import runs inside
:func:`signdigits.quiet.start_up_notices_dropped`. TF's own later log lines keep
``TF_CPP_MIN_LOG_LEVEL`` (default here: 3, errors surface as Python exceptions). Keras'
notice that ``.h5`` files are a legacy format is dropped: ``.h5`` is the format we chose,
for its checkable architecture. They come with the ``train`` extra: without it, importing
this module raises :class:`signdigits.MissingTrainExtra`, whose message says how to add it.
"""

import logging
import os

from signdigits import TRAIN_INSTALL, MissingTrainExtra
from signdigits.quiet import start_up_notices_dropped

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class _DropLegacyHdf5Notice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "considered legacy" not in record.getMessage()


try:
    with start_up_notices_dropped():
        import keras
        import tensorflow as tf
except ImportError as exc:
    raise MissingTrainExtra(
        f"training, converting a .h5 and the Keras runtime need TensorFlow and Keras, which the app "
        f"does not install ({exc.name} is missing): {TRAIN_INSTALL}"
    ) from exc

logging.getLogger("absl").addFilter(_DropLegacyHdf5Notice())

__all__ = ["keras", "tf"]
