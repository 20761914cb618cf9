"""MicroPython's ``bluetooth`` module on a blebridge board (see docs/micropython.md).

    from blebridge.micropython import BLE, UUID
    ble = BLE()                       # the default board (BLEBRIDGE_PORT, else sim:blebridge)
    alice = BLE(port="sim:alice")     # more boards in one process
    bob = BLE(blebridge.open_board("sim:bob"))

Under ``blebridge run`` the same objects are importable as ``bluetooth`` (blebridge/micropython/shims/).
Module contents are MicroPython's: ``BLE``, ``UUID`` and the five ``FLAG_*`` constants.
"""
from __future__ import annotations

from .ble import BLE, DEFAULT_PORT, BluetoothOSError, close_all, default_port
from .uuid import UUID

FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020

__all__ = ["BLE", "UUID", "FLAG_READ", "FLAG_WRITE", "FLAG_NOTIFY", "FLAG_INDICATE",
           "FLAG_WRITE_NO_RESPONSE", "BluetoothOSError", "DEFAULT_PORT", "default_port", "close_all"]
