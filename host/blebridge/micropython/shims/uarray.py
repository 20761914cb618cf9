"""``uarray``: MicroPython's old name for ``array``."""
import sys

import array

sys.modules[__name__] = array
