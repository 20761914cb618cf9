"""``ujson``: MicroPython's old name for ``json``."""
import sys

import json

sys.modules[__name__] = json
