"""TensorFlow and Keras, imported once and quietly: ``from signdigits.backend import keras, tf``.

Importing TensorFlow writes C++ start-up lines straight to file descriptor 2 (oneDNN,
CUDA probing, absl's "before InitializeLog" notice), and ``TF_CPP_MIN_LOG_LEVEL`` does not
reach those written before absl's logging starts. So the import runs with descriptor 2
sent to a temporary file, and every line of it except those start-up notices is written
back afterwards. TF's own later log lines keep ``TF_CPP_MIN_LOG_LEVEL`` (default here: 3,
errors surface as Python exceptions). Keras' notice that ``.h5`` files are a legacy format
is dropped: ``.h5`` is the format we chose, for its checkable architecture.
"""

import logging
import os
import re
import sys
import tempfile
from contextlib import contextmanager

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: Start-up notices: absl's, and C++ INFO lines ("I0000 00:00:... port.cc:153] ...").
NOISE = re.compile(rb"WARNING: All log messages before absl::InitializeLog\(\)|I\d{4} [\d:.]+ +\d+ \w+\.cc:\d+\] ")


@contextmanager
def _start_up_notices_dropped():
    """File descriptor 2 goes to a temporary file; what is not start-up noise is replayed."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = b"".join(line for line in captured if not NOISE.match(line))
            if kept:
                os.write(2, kept)


class _DropLegacyHdf5Notice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "considered legacy" not in record.getMessage()


with _start_up_notices_dropped():
    import keras
    import tensorflow as tf

logging.getLogger("absl").addFilter(_DropLegacyHdf5Notice())

__all__ = ["keras", "tf"]
