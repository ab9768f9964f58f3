"""Start-up notices that native libraries write straight to file descriptor 2, dropped.

TensorFlow's import writes C++ start-up lines (oneDNN, CUDA probing, absl's "before
InitializeLog" notice) and LiteRT announces its XNNPACK delegate, below the reach of
Python's logging. Inside :func:`start_up_notices_dropped`, descriptor 2 goes to a
temporary file, and every line of it except those notices is written back afterwards.
"""

import os
import re
import sys
import tempfile
from contextlib import contextmanager

#: absl's notice, C++ INFO lines ("I0000 00:00:... port.cc:153] ...") and LiteRT's delegate line.
NOISE = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\)|I\d{4} [\d:.]+ +\d+ \w+\.cc:\d+\] "
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
)


@contextmanager
def start_up_notices_dropped():
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
