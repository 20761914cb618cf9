"""``uhashlib``: MicroPython's old name for ``hashlib``."""
import sys

import hashlib

sys.modules[__name__] = hashlib
