"""``ucollections``: MicroPython's old name for ``collections``."""
import sys

import collections

sys.modules[__name__] = collections
