"""Entry point for ``python -m signdigits``."""

import sys

from signdigits.cli import main

sys.exit(main())
