"""``uasyncio``: MicroPython's old name for ``asyncio``."""
import sys

import asyncio

sys.modules[__name__] = asyncio
