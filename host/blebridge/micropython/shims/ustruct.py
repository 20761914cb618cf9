"""``ustruct``: MicroPython's old name for ``struct``."""
import sys

import struct

sys.modules[__name__] = struct
