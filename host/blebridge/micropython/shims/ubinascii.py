"""``ubinascii``: MicroPython's old name for ``binascii``."""
import sys

import binascii

sys.modules[__name__] = binascii
