"""``utime``: MicroPython's old name for ``time`` (with sleep_ms, ticks_ms, ...)."""
import sys
import time

from blebridge.micropython.runtime import install_time_extensions

install_time_extensions()
sys.modules[__name__] = time
