"""``ure``: MicroPython's old name for ``re``."""
import sys

import re

sys.modules[__name__] = re
