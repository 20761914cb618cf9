"""``urandom``: MicroPython's old name for ``random``."""
import sys

import random

sys.modules[__name__] = random
