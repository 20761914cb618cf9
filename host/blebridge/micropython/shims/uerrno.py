"""``uerrno``: MicroPython's old name for ``errno``."""
import sys

import errno

sys.modules[__name__] = errno
