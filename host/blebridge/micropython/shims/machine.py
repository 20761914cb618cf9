"""The part of MicroPython's ``machine`` module that makes sense on a PC.

``idle()`` waits briefly for the next event (events arrive on other threads);
``reset()``/``soft_reset()`` end the script as a reboot would end it on a board.
"""
import os
import sys

from blebridge.micropython.runtime import idle
from blebridge.micropython.runtime import install_time_extensions as _install

_install()

#: A board's CPU frequency is meaningless here; scripts that print it get a stable value (Hz).
_FREQ_HZ = 64_000_000


def freq(*args: int) -> int:
    return _FREQ_HZ


def unique_id() -> bytes:
    return os.uname().nodename.encode()[:8].ljust(8, b"\0")


def reset() -> None:
    sys.exit(0)


soft_reset = reset


def disable_irq() -> int:
    return 0


def enable_irq(state: int = 0) -> None:
    return None


def lightsleep(time_ms: int = 0) -> None:
    from time import sleep_ms
    sleep_ms(time_ms)


__all__ = ["idle", "freq", "unique_id", "reset", "soft_reset", "disable_irq", "enable_irq",
           "lightsleep"]
