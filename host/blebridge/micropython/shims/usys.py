"""``usys``: MicroPython's old name for ``sys``."""
import sys

import sys

sys.modules[__name__] = sys
