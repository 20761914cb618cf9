"""MicroPython's ``bluetooth`` module, served by blebridge (blebridge.micropython)."""
from blebridge.micropython import (BLE, FLAG_INDICATE, FLAG_NOTIFY, FLAG_READ, FLAG_WRITE,
                                   FLAG_WRITE_NO_RESPONSE, UUID)
from blebridge.micropython.runtime import install_time_extensions as _install

_install()

__all__ = ["BLE", "UUID", "FLAG_READ", "FLAG_WRITE", "FLAG_NOTIFY", "FLAG_INDICATE",
           "FLAG_WRITE_NO_RESPONSE"]
