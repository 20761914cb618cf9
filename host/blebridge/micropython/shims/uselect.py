"""``uselect``: MicroPython's old name for ``select``."""
import sys

import select

sys.modules[__name__] = select
