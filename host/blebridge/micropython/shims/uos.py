"""``uos``: MicroPython's old name for ``os``."""
import sys

import os

sys.modules[__name__] = os
