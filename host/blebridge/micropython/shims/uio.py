"""``uio``: MicroPython's old name for ``io``."""
import sys

import io

sys.modules[__name__] = io
